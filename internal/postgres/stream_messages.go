package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// RecordStreamMessages records, in its own transaction, that the
// messages at seqs of the submission stream belong to the installations
// whose IDHash is at the same index, and returns the seqs whose
// installation is tombstoned: a message that arrived after its
// installation's erasure began, which the worker must delete itself. The
// tombstones are read after the record committed, so an erasure either
// sees the record or its tombstone is seen here.
func (s *Store) RecordStreamMessages(ctx context.Context, idHashes []string, seqs []uint64) ([]uint64, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO stream_messages (id_hash, stream_seq)
		SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING`, idHashes, seqs); err != nil {
		return nil, pgWrap("record stream messages", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT m.stream_seq FROM unnest($1::text[], $2::bigint[]) AS m(id_hash, stream_seq)
		JOIN privacy_tombstones t ON t.id_hash = m.id_hash`, idHashes, seqs)
	if err != nil {
		return nil, pgWrap("record stream messages: tombstones", err)
	}
	erased, err := pgx.CollectRows(rows, pgx.RowTo[uint64])
	return erased, pgWrap("record stream messages: tombstones", err)
}

// StreamMessages returns the recorded messages of the installation.
func (s *Store) StreamMessages(ctx context.Context, idHash string) ([]uint64, error) {
	rows, err := s.pool.Query(ctx, `SELECT stream_seq FROM stream_messages WHERE id_hash = $1 ORDER BY stream_seq`, idHash)
	if err != nil {
		return nil, pgWrap("stream messages", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uint64])
	return out, pgWrap("stream messages", err)
}

// ForgetStreamMessages deletes the records of messages that were deleted
// from the stream.
func (s *Store) ForgetStreamMessages(ctx context.Context, seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM stream_messages WHERE stream_seq = ANY($1::bigint[])`, seqs)
	return pgWrap("forget stream messages", err)
}

// ForgetStreamMessagesBefore deletes the records of messages before first,
// which the stream no longer holds (its max-age removed them), and
// returns how many went.
func (s *Store) ForgetStreamMessagesBefore(ctx context.Context, first uint64) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM stream_messages WHERE stream_seq < $1`, int64(first))
	if err != nil {
		return 0, pgWrap("forget stream messages", err)
	}
	return tag.RowsAffected(), nil
}
