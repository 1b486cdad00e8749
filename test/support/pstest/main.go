// Command pstest serves Google's in-memory Pub/Sub fake (cloud.google.com/go/pubsub/v2/pstest) on a
// loopback port, for tag-connector's tests: `pstest -port 8085` then PUBSUB_EMULATOR_HOST=127.0.0.1:8085.
// State lives in memory only: a restart loses every topic, subscription and message.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8085, "port to listen on (0 = any free port)")
	flag.Parse()

	srv := pstest.NewServerWithAddress(fmt.Sprintf("%s:%d", *host, *port))
	// The harness waits for this line before it hands out the address.
	fmt.Printf("pstest listening on %s\n", srv.Addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if err := srv.Close(); err != nil {
		log.Printf("pstest: close: %v", err)
	}
}
