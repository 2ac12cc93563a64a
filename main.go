// Command opsmop pushes declarative policy to hosts over SSH. main is thin:
// it wires signals and streams and hands everything to run, which the CLI
// tests call in-process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	raiseFileLimit()
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		// First Ctrl-C: stop starting work, stop running commands, clean
		// up and print the recap. A second one exits at once.
		fmt.Fprintln(os.Stderr, "interrupted: stopping (running commands are being stopped, nothing new starts; press Ctrl-C again to exit at once)")
		cancel()
		<-sigs
		os.Exit(exitInterrupted)
	}()
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(run(ctx, os.Args, env))
}

// raiseFileLimit lifts the soft open-files limit to the hard one: a run
// over many hosts holds a connection (and its pipes) per host.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
