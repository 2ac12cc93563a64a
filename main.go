// Command opsmop pushes declarative policy to hosts over SSH. main is thin:
// it wires signals and streams and hands everything to run, which the CLI
// tests call in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		// First Ctrl-C: stop starting work, stop running commands, clean
		// up and print the recap. A second one exits at once.
		cancel()
		<-sigs
		os.Exit(exitInterrupted)
	}()
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	os.Exit(run(ctx, os.Args, env))
}
