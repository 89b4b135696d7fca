package report_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/provisionhq/provision/internal/report"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

var (
	scaleOnce sync.Once
	scale     *rolluptest.Scale
)

// scaleStore is 100,000 installations over 30 days.
func scaleStore(b *testing.B) *rolluptest.Scale {
	scaleOnce.Do(func() { scale = rolluptest.NewScale(b, 100_000, 30) })
	return scale
}

func benchReport(b *testing.B, build func(context.Context, report.Options) (report.Document, error), format string) {
	s := scaleStore(b)
	o := report.Options{From: s.Start.Format("2006-01-02"), To: s.Start.AddDate(0, 0, s.Days-1).Format("2006-01-02")}
	ctx := context.Background()
	for b.Loop() {
		d, err := build(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		if err := report.Write(io.Discard, d, format); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQualityReport builds and renders the quality report for 100,000
// installations over 30 days.
func BenchmarkQualityReport(b *testing.B) {
	for _, format := range []string{"json", "html"} {
		b.Run(format, func(b *testing.B) {
			benchReport(b, func(ctx context.Context, o report.Options) (report.Document, error) {
				return report.BuildQuality(ctx, scaleStore(b).Store, o)
			}, format)
		})
	}
}

// BenchmarkThreatReport is the same for the threat report.
func BenchmarkThreatReport(b *testing.B) {
	for _, format := range []string{"json", "html"} {
		b.Run(format, func(b *testing.B) {
			benchReport(b, func(ctx context.Context, o report.Options) (report.Document, error) {
				return report.BuildThreats(ctx, scaleStore(b).Store, o)
			}, format)
		})
	}
}
