// Command opsmop-lab starts and stops a lab of throwaway OpenSSH hosts on
// this machine (root only). `opsmop-lab up` leaves the hosts running and
// prints where the inventory, key, known_hosts and deploy password are;
// `opsmop-lab down --dir D` removes them. See docs/lab.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/opsmop/opsmop/internal/lab"
)

// defaultHosts is the lab `up` builds when --hosts is not given.
const defaultHosts = "web1:webservers,web2:webservers,bastion:bastions,db1:dbservers@bastion"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  opsmop-lab up [--dir D] [--hosts NAME:GROUP[@VIA],...] [--subnet S] [--port P]
  opsmop-lab down --dir D
  opsmop-lab down --all     (every lab under ` + lab.DefaultBase + `, e.g. after an interrupted test run)
`

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[1] {
	case "up":
		return up(ctx, args[2:], stdout, stderr)
	case "down":
		return down(args[2:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "opsmop-lab: unknown command %q\n%s", args[1], usage)
	return 2
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("opsmop-lab up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "lab directory (default: a fresh one under "+lab.DefaultBase+")")
	hosts := fs.String("hosts", defaultHosts, "hosts as NAME:GROUP[@VIA], comma-separated")
	subnet := fs.Uint("subnet", 60, "second octet of the 127.S.0.0/16 block public hosts listen in (1-255)")
	port := fs.Int("port", 0, "sshd port of every host (default 22, or 2222 when the machine's sshd holds *:22)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "opsmop-lab up: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *subnet < 1 || *subnet > 255 {
		fmt.Fprintf(stderr, "opsmop-lab up: --subnet %d: must be 1-255\n", *subnet)
		return 2
	}
	specs, err := parseHosts(*hosts)
	if err != nil {
		fmt.Fprintf(stderr, "opsmop-lab up: --hosts: %v\n", err)
		return 2
	}
	l, err := lab.Start(ctx, lab.Config{Dir: *dir, Subnet: byte(*subnet), Hosts: specs, Port: *port})
	if err != nil {
		fmt.Fprintf(stderr, "opsmop-lab up: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "lab dir:         %s\n", l.Dir)
	fmt.Fprintf(stdout, "inventory:       %s\n", l.Inventory)
	fmt.Fprintf(stdout, "known_hosts:     %s\n", l.KnownHosts)
	fmt.Fprintf(stdout, "client key:      %s\n", l.ClientKey)
	fmt.Fprintf(stdout, "ssh_config:      %s (ssh -F %s HOST)\n", l.SSHConfig, l.SSHConfig)
	fmt.Fprintf(stdout, "deploy password: %s (file)\n", l.DeployPasswordFile)
	for _, h := range l.Hosts {
		via := ""
		if h.Via != "" {
			via = " via " + h.Via
		}
		fmt.Fprintf(stdout, "host %-12s %-12s %s:%d%s (pid %d)\n", h.Name, h.Group, h.Addr, h.Port, via, h.PID)
	}
	fmt.Fprintf(stdout, "stop with:       opsmop-lab down --dir %s\n", l.Dir)
	return 0
}

func down(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("opsmop-lab down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "lab directory")
	all := fs.Bool("all", false, "stop every lab under "+lab.DefaultBase)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if (*dir == "") == !*all || fs.NArg() > 0 {
		fmt.Fprint(stderr, "opsmop-lab down: give either --dir D (the directory `opsmop-lab up` printed) or --all\n")
		return 2
	}
	dirs := []string{*dir}
	if *all {
		ents, err := os.ReadDir(lab.DefaultBase)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "opsmop-lab down: %v\n", err)
			return 1
		}
		dirs = dirs[:0]
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(lab.DefaultBase, e.Name()))
			}
		}
	}
	code := 0
	for _, d := range dirs {
		if err := lab.StopDir(d); err != nil {
			fmt.Fprintf(stderr, "opsmop-lab down: %v\n", err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "lab %s stopped and removed\n", d)
	}
	if *all {
		_ = os.Remove(lab.DefaultBase) // only if empty
	}
	return code
}

// parseHosts parses "NAME:GROUP[@VIA],..." (GROUP may be empty, ":GROUP"
// may be left out).
func parseHosts(s string) ([]lab.HostSpec, error) {
	var out []lab.HostSpec
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var h lab.HostSpec
		rest := item
		if i := strings.IndexByte(rest, '@'); i >= 0 {
			h.Via, rest = rest[i+1:], rest[:i]
			if h.Via == "" {
				return nil, fmt.Errorf("%q: empty name after @", item)
			}
		}
		h.Name, h.Group, _ = strings.Cut(rest, ":")
		if h.Name == "" {
			return nil, fmt.Errorf("%q: no host name", item)
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("no hosts given")
	}
	return out, nil
}
