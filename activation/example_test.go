package activation_test

import (
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/fdsend/fdsend/activation"
)

// A server that runs the same under a launcher and on its own
// (ListenOrInherit): under `fdsend activate -l 8080 -- ./server`,
// `systemd-socket-activate -l 8080 ./server` or a systemd socket unit it
// serves on the socket it was given (named "http", or the single unnamed
// one); run bare, it listens itself. Here, run bare, it listens on a port
// of its own.
func Example() {
	l, err := activation.ListenOrInherit("http", "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))

	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	// Output: hello
}

// Names that can be sent, and names that cannot.
func ExampleValidateName() {
	for _, name := range []string{"http", "", "a:b", "tab\there"} {
		fmt.Println(activation.ValidateName(name))
	}
	// Output:
	// <nil>
	// activation: empty descriptor name: want 1 to 255 printable ASCII characters: invalid argument
	// activation: descriptor name "a:b" contains ':', the LISTEN_FDNAMES separator: invalid argument
	// activation: descriptor name "tab\there" contains control character 0x09 at byte 3: invalid argument
}

// List what a launcher handed over, whatever it is.
func ExampleFiles() {
	files, err := activation.Files()
	if err != nil {
		log.Fatal(err) // malformed LISTEN_* variables: the error names the variable
	}
	for _, f := range files {
		fmt.Printf("%s: %s\n", f.Name, f.File.Name())
	}
}

// systemd gives one name to every socket of a unit, an IPv4 and an IPv6 one
// for ListenStream=80, say: take them all and serve on each.
func ExampleListeners() {
	ls, err := activation.Listeners("http")
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range ls {
		go http.Serve(l, http.FileServer(http.Dir("/srv/www")))
	}
	select {}
}

// A DNS-like UDP server on the inherited datagram socket named "dns", or on
// a new one.
func ExampleListenPacketOrInherit() {
	pc, err := activation.ListenPacketOrInherit("dns", "udp", "127.0.0.1:5353")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}
