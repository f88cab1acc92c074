// Command providersim runs the provider simulator as a process, for
// `make demo` and cross-process tests. It prints "listening on http://ADDR"
// once it accepts connections, and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "providersim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("providersim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	apiKey := fs.String("api-key", os.Getenv("PROVIDERSIM_API_KEY"), "API key clients must send (default $PROVIDERSIM_API_KEY; empty: any)")
	models := fs.String("models", "", "comma-separated model allow list (empty: any model)")
	replyWords := fs.Int("reply-words", 0, "pad replies to this many words")
	chunks := fs.Int("chunks", 4, "deltas per streamed reply")
	eventDelay := fs.Duration("event-delay", 0, "pause between streamed events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := providersim.Options{APIKey: *apiKey, ReplyWords: *replyWords, Chunks: *chunks, EventDelay: *eventDelay}
	if *models != "" {
		opts.Models = strings.Split(*models, ",")
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sim := providersim.New(opts)
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sim.Close() // release hung handlers so Shutdown does not wait on them
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
