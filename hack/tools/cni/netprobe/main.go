// Command netprobe checks reachability from inside a network namespace, for
// Command netprobe checks reachability from inside a network namespace, for
// the real-network tests, with nothing but the standard library: this
// machine has no ping, and Node.js cannot send ICMP.
//
//	netprobe ping [-c count] [-W seconds] ADDRESS      ICMP echo, IPv4 or IPv6
//	netprobe serve ADDRESS:PORT GREETING               TCP listener that sends GREETING to every client
//	netprobe connect [-W seconds] ADDRESS:PORT         TCP connect, prints the greeting
//
// Output imitates ping's, so a transcript reads familiarly. Exit code 0 only
// if every probe got its answer.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ping":
		err = runPing(os.Args[2:])
	case "serve":
		err = runServe(os.Args[2:])
	case "connect":
		err = runConnect(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "netprobe %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: netprobe ping [-c count] [-W seconds] ADDRESS | serve ADDRESS:PORT GREETING | connect [-W seconds] ADDRESS:PORT")
	os.Exit(2)
}

func runPing(args []string) error {
	flags := flag.NewFlagSet("ping", flag.ExitOnError)
	count := flags.Int("c", 3, "echo requests to send")
	wait := flags.Float64("W", 2, "seconds to wait for each reply")
	_ = flags.Parse(args)
	if flags.NArg() != 1 {
		usage()
	}
	target, err := netip.ParseAddr(flags.Arg(0))
	if err != nil {
		return err
	}
	return ping(target, *count, time.Duration(*wait*float64(time.Second)))
}

type icmpKind struct {
	network         string
	echo, echoReply byte
	computeChecksum bool
}

var (
	icmpV4 = icmpKind{network: "ip4:icmp", echo: 8, echoReply: 0, computeChecksum: true}
	// The kernel fills in ICMPv6 checksums on raw sockets (RFC 3542).
	icmpV6 = icmpKind{network: "ip6:ipv6-icmp", echo: 128, echoReply: 129}
)

func ping(target netip.Addr, count int, wait time.Duration) error {
	kind := icmpV4
	if target.Is6() && !target.Is4In6() {
		kind = icmpV6
	}
	conn, err := net.ListenPacket(kind.network, "")
	if err != nil {
		return fmt.Errorf("raw ICMP socket (needs root or CAP_NET_RAW): %w", err)
	}
	defer conn.Close()

	source, device := route(target)
	payload := []byte(strings.Repeat("netservice probe ", 4))[:56]
	fmt.Printf("PING %s from %s %s: %d data bytes\n", target, source, device, len(payload))

	id := uint16(os.Getpid())
	received := 0
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		request := echoMessage(kind, id, uint16(seq), payload)
		sent := time.Now()
		if _, err := conn.WriteTo(request, &net.IPAddr{IP: target.AsSlice()}); err != nil {
			fmt.Printf("icmp_seq=%d send failed: %v\n", seq, err)
			continue
		}
		_ = conn.SetReadDeadline(sent.Add(wait))
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				fmt.Printf("no reply for icmp_seq=%d within %s\n", seq, wait)
				break
			}
			if isReply(kind, buf[:n], id, uint16(seq)) && sameAddress(from, target) {
				received++
				fmt.Printf("%d bytes from %s: icmp_seq=%d time=%.3f ms\n", n, target, seq, float64(time.Since(sent).Microseconds())/1000)
				break
			}
		}
		if seq < count {
			time.Sleep(200 * time.Millisecond)
		}
	}
	fmt.Printf("--- %s ping statistics ---\n%d packets transmitted, %d received, %d%% packet loss\n", target, count, received, (count-received)*100/count)
	if received != count {
		return fmt.Errorf("%d of %d echo requests to %s unanswered", count-received, count, target)
	}
	return nil
}

func echoMessage(kind icmpKind, id, seq uint16, payload []byte) []byte {
	message := make([]byte, 8+len(payload))
	message[0] = kind.echo
	binary.BigEndian.PutUint16(message[4:], id)
	binary.BigEndian.PutUint16(message[6:], seq)
	copy(message[8:], payload)
	if kind.computeChecksum {
		binary.BigEndian.PutUint16(message[2:], checksum(message))
	}
	return message
}

func isReply(kind icmpKind, message []byte, id, seq uint16) bool {
	return len(message) >= 8 && message[0] == kind.echoReply &&
		binary.BigEndian.Uint16(message[4:]) == id && binary.BigEndian.Uint16(message[6:]) == seq
}

// The Internet checksum (RFC 1071).
func checksum(data []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(data); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(data[i:]))
	}
	if len(data)%2 == 1 {
		sum += uint32(data[len(data)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func sameAddress(from net.Addr, target netip.Addr) bool {
	ip, ok := from.(*net.IPAddr)
	if !ok {
		return false
	}
	addr, ok := netip.AddrFromSlice(ip.IP)
	return ok && addr.Unmap() == target.Unmap()
}

// route names the source address and interface the kernel picks for target,
// so a transcript shows which network the probe took.
func route(target netip.Addr) (source string, device string) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(target, 9)))
	if err != nil {
		return "?", "(no route)"
	}
	defer conn.Close()
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	interfaces, _ := net.Interfaces()
	for _, iface := range interfaces {
		addresses, _ := iface.Addrs()
		for _, address := range addresses {
			if prefix, err := netip.ParsePrefix(address.String()); err == nil && prefix.Addr() == local {
				return local.String(), "dev " + iface.Name
			}
		}
	}
	return local.String(), ""
}

func runServe(args []string) error {
	if len(args) != 2 {
		usage()
	}
	listener, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = fmt.Fprintf(conn, "%s\n", args[1])
		}()
	}
}

func runConnect(args []string) error {
	flags := flag.NewFlagSet("connect", flag.ExitOnError)
	wait := flags.Float64("W", 3, "seconds to wait for the connection and the greeting")
	_ = flags.Parse(args)
	if flags.NArg() != 1 {
		usage()
	}
	timeout := time.Duration(*wait * float64(time.Second))
	started := time.Now()
	conn, err := net.DialTimeout("tcp", flags.Arg(0), timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	greeting, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("connected to %s but read: %w", flags.Arg(0), err)
	}
	fmt.Printf("connected %s -> %s in %.3f ms: %s\n", conn.LocalAddr(), conn.RemoteAddr(), float64(time.Since(started).Microseconds())/1000, strings.TrimSpace(greeting))
	return nil
}
