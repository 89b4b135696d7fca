package natslog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
)

// ConsumerConfig describes a durable pull consumer shared by workers.
type ConsumerConfig struct {
	// Durable names the consumer; every worker of one job uses the same
	// name and JetStream hands each message to one of them.
	Durable string
	// AckWait is how long a delivered message may stay unacknowledged
	// before JetStream gives it to another worker: the time a killed
	// worker's batch waits to be redone.
	AckWait time.Duration
	// MaxDeliver bounds the attempts at one message; the last failing
	// attempt moves it to the dead-letter stream.
	MaxDeliver int
	// MaxAckPending bounds the messages out with all workers together.
	MaxAckPending int
}

// DefaultConsumerConfig returns the settings of the event-store workers.
func DefaultConsumerConfig(durable string) ConsumerConfig {
	return ConsumerConfig{Durable: durable, AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 20000}
}

// Validate names the first bad field.
func (c ConsumerConfig) Validate() error {
	var errs []error
	if c.Durable == "" {
		errs = append(errs, errors.New("consumer.durable: required"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("consumer.ack_wait: at least 1s"))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, errors.New("consumer.max_deliver: at least 1"))
	}
	if c.MaxAckPending < 1 {
		errs = append(errs, errors.New("consumer.max_ack_pending: at least 1"))
	}
	return errors.Join(errs...)
}

// Consumer is a durable pull consumer on the submissions stream.
type Consumer struct {
	l    *Log
	cfg  ConsumerConfig
	cons jetstream.Consumer
}

// Consumer creates (or updates) a durable consumer and returns it.
func (l *Log) Consumer(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cons, err := l.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		Description:   "Provision worker",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: l.cfg.Subject,
		Replicas:      l.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("natslog: consumer %s: %w", cfg.Durable, unavailable(err))
	}
	return &Consumer{l: l, cfg: cfg, cons: cons}, nil
}

// Delivery is one message handed to this worker.
type Delivery struct {
	msg jetstream.Msg
	c   *Consumer
	// Submission is the decoded message; nil when Err is set. Its Events
	// are empty when Encoded holds them.
	Submission *provision.Submission
	// Encoded is the submission's events in their stored form, as ingest
	// encoded them; nil for a message without events or of format 1.
	Encoded *batchcodec.Encoded
	// Err wraps ErrMalformed when the message cannot be decoded.
	Err error
	// StreamSeq is the message's position in the stream.
	StreamSeq uint64
	// Attempt counts deliveries of this message, from 1.
	Attempt uint64
}

// Fetch returns at most max messages: those available now, or, when none
// are, the first to arrive within wait together with any that came with
// it. A worker thus writes big batches under a backlog and does not sit on
// a half-full batch when traffic is light.
func (c *Consumer) Fetch(ctx context.Context, max int, wait time.Duration) ([]*Delivery, error) {
	out, err := c.collect(c.cons.FetchNoWait(max))
	if err != nil || len(out) > 0 {
		return out, err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	out, err = c.collect(c.cons.Fetch(1, jetstream.FetchContext(wctx)))
	if err != nil || len(out) == 0 || max == 1 {
		return out, err
	}
	more, err := c.collect(c.cons.FetchNoWait(max - 1))
	if err != nil {
		// What arrived is still ours to process.
		return out, nil
	}
	return append(out, more...), nil
}

func (c *Consumer) collect(batch jetstream.MessageBatch, err error) ([]*Delivery, error) {
	if err != nil {
		return nil, fmt.Errorf("natslog: fetch: %w", unavailable(err))
	}
	var out []*Delivery
	for msg := range batch.Messages() {
		d := &Delivery{msg: msg, c: c}
		if meta, err := msg.Metadata(); err == nil {
			d.StreamSeq, d.Attempt = meta.Sequence.Stream, meta.NumDelivered
		}
		d.Submission, d.Encoded, d.Err = decode(msg.Data())
		out = append(out, d)
	}
	if err := batch.Error(); err != nil && len(out) == 0 &&
		!errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("natslog: fetch: %w", unavailable(err))
	}
	return out, nil
}

// Ack confirms the message was processed. It does not wait for the
// server: a lost ack only means the message comes again, and writing it
// again stores nothing.
func (d *Delivery) Ack() error {
	if err := d.msg.Ack(); err != nil {
		return fmt.Errorf("natslog: ack %d: %w", d.StreamSeq, unavailable(err))
	}
	return nil
}

// InProgress restarts the AckWait clock while a batch waits on the store.
func (d *Delivery) InProgress() error { return d.msg.InProgress() }

// Retry hands the message back for another attempt after delay.
func (d *Delivery) Retry(delay time.Duration) error { return d.msg.NakWithDelay(delay) }

// LastAttempt says whether a failure now exhausts MaxDeliver.
func (d *Delivery) LastAttempt() bool { return d.Attempt >= uint64(d.c.cfg.MaxDeliver) }

// DeadLetter copies the message to the dead-letter stream with the reason,
// then terminates it so it is not delivered again.
func (d *Delivery) DeadLetter(ctx context.Context, reason error) error {
	msg := nats.NewMsg(d.c.l.cfg.DeadSubject)
	msg.Data = d.msg.Data()
	msg.Header.Set("Provision-Stream-Seq", strconv.FormatUint(d.StreamSeq, 10))
	msg.Header.Set("Provision-Consumer", d.c.cfg.Durable)
	msg.Header.Set("Provision-Attempts", strconv.FormatUint(d.Attempt, 10))
	msg.Header.Set("Provision-Reason", truncate(reason.Error(), 512))
	// The stream sequence as message id: dead-lettering twice keeps one.
	id := d.c.l.cfg.Stream + "/" + strconv.FormatUint(d.StreamSeq, 10)
	if _, err := d.c.l.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("natslog: dead letter %d: %w", d.StreamSeq, unavailable(err))
	}
	if err := d.msg.TermWithReason(truncate(reason.Error(), 128)); err != nil {
		return fmt.Errorf("natslog: terminate %d: %w", d.StreamSeq, unavailable(err))
	}
	return nil
}

// truncate makes s fit a header value: at most n bytes, no control
// characters.
func truncate(s string, n int) string {
	b := []byte(s)
	if len(b) > n {
		b = b[:n]
	}
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// Backlog returns the messages not yet delivered and those delivered but not
// yet acknowledged, over all workers of this consumer.
func (c *Consumer) Backlog(ctx context.Context) (pending, unacked uint64, err error) {
	info, err := c.cons.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("natslog: consumer info: %w", unavailable(err))
	}
	return info.NumPending, uint64(info.NumAckPending), nil
}
