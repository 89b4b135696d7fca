package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/selfsigned"
)

// serveBaseline is the comparison point: the same TLS and HTTP stack, a
// gzip decompression and the server's decode of the batch, nothing else —
// no limits, validation, location or storage.
func serveBaseline(dir, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cert, err := selfSigned(dir)
	if err != nil {
		return err
	}
	var pool sync.Pool
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/submit", func(w http.ResponseWriter, r *http.Request) {
		zr, _ := pool.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(r.Body)
		} else {
			err = zr.Reset(r.Body)
		}
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		defer pool.Put(zr)
		body, err := io.ReadAll(zr)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		// The server's own decoder, so both sides pay for the same
		// decoding and the ratio measures validation, durability and
		// storage.
		b, err := ingest.DecodeBatch(body, manifest.Reference(), ingest.DefaultLimits(), time.Now())
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"batch_id":%q,"accepted":%d,"rejected":[],"duplicate":false}`+"\n", b.ID, len(b.Events))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	fmt.Printf("listening on https://%s\n", ln.Addr())
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		<-c
		srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// selfSigned makes the baseline's certificate and writes it, and its key
// for the collector peer, which reads both files, into dir.
func selfSigned(dir string) (tls.Certificate, error) {
	c, err := selfsigned.New("baseline", 24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	return c.TLS, c.WriteFiles(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
}
