// Command otelpeer is bench/ingest's peer: the OpenTelemetry Collector
// built from its Go modules, with an OTLP/HTTP receiver over TLS and an
// OTLP/HTTP exporter whose persistent queue lives on the file_storage
// extension with fsync, so that a request is answered once its logs are
// on disk, as provision's are. The exporter sends to a sink in this
// process that answers at once. It has its own go.mod so that the main
// module does not gain the collector's dependencies.
//
//	otelpeer -serve -dir DIR    serve; prints "listening on https://ADDR"
//	otelpeer -convert IN OUT    turn gzip JSON batches into gzip OTLP logs
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func main() {
	serve := flag.Bool("serve", false, "run the collector")
	dir := flag.String("dir", "", "directory of server.crt, server.key and the queue")
	convert := flag.Bool("convert", false, "convert the batches in directory IN into directory OUT")
	flag.Parse()
	var err error
	switch {
	case *serve:
		err = run(*dir)
	case *convert && flag.NArg() == 2:
		err = convertDir(flag.Arg(0), flag.Arg(1))
	default:
		err = fmt.Errorf("use -serve -dir DIR or -convert IN OUT")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "otelpeer:", err)
		os.Exit(1)
	}
}

func components() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](filestorage.NewFactory()); err != nil {
		return f, err
	}
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](otlphttpexporter.NewFactory())
	f.Telemetry = otelconftelemetry.NewFactory()
	return f, err
}

const config = `
extensions:
  file_storage:
    directory: %[1]s
    fsync: true
receivers:
  otlp:
    protocols:
      http:
        endpoint: %[2]s
        tls:
          cert_file: %[3]s
          key_file: %[4]s
exporters:
  otlp_http:
    endpoint: http://%[5]s
    compression: none
    sending_queue:
      enabled: true
      storage: file_storage
service:
  extensions: [file_storage]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlp_http]
`

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func run(dir string) error {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(sink, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	queue := filepath.Join(dir, "queue")
	if err := os.MkdirAll(queue, 0o700); err != nil {
		return err
	}
	yaml := fmt.Sprintf(config, queue, addr, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), sink.Addr())
	col, err := otelcol.NewCollector(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "otelpeer", Description: "bench peer", Version: "bench"},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{ResolverSettings: confmap.ResolverSettings{
			URIs:              []string{"yaml:" + yaml},
			ProviderFactories: []confmap.ProviderFactory{yamlprovider.NewFactory()},
		}},
		DisableGracefulShutdown: true,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		for col.GetState() != otelcol.StateRunning {
			time.Sleep(20 * time.Millisecond)
		}
		fmt.Printf("listening on https://%s\n", addr)
	}()
	go func() { <-ctx.Done(); col.Shutdown() }()
	return col.Run(ctx)
}

// convertDir turns each gzip JSON batch in in into a gzip OTLP logs
// request in out: one resource per batch (installation and region), one
// log record per event, its type the body and its fields attributes.
func convertDir(in, out string) error {
	files, err := os.ReadDir(in)
	if err != nil {
		return err
	}
	var m plog.ProtoMarshaler
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(in, f.Name()))
		if err != nil {
			return err
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		var b struct {
			ID             string `json:"batch_id"`
			InstallationID string `json:"installation_id"`
			Region         string `json:"region"`
			Events         []struct {
				ID     string         `json:"id"`
				Type   string         `json:"type"`
				Time   time.Time      `json:"time"`
				Fields map[string]any `json:"fields"`
			} `json:"events"`
		}
		if err := json.NewDecoder(zr).Decode(&b); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
		logs := plog.NewLogs()
		rl := logs.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("installation.id", b.InstallationID)
		rl.Resource().Attributes().PutStr("region", b.Region)
		rl.Resource().Attributes().PutStr("batch.id", b.ID)
		sl := rl.ScopeLogs().AppendEmpty()
		for _, e := range b.Events {
			r := sl.LogRecords().AppendEmpty()
			r.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
			r.Body().SetStr(e.Type)
			if err := r.Attributes().FromRaw(e.Fields); err != nil {
				return err
			}
			r.Attributes().PutStr("event.id", e.ID)
		}
		pb, err := m.MarshalLogs(logs)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(pb)
		zw.Close()
		if err := os.WriteFile(filepath.Join(out, f.Name()), buf.Bytes(), 0o600); err != nil {
			return err
		}
	}
	return nil
}
