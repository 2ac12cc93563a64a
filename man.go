package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// manCommand is `opsmop man`: it prints opsmop(1), the manual page in
// roff, generated from this binary's own commands and flags (so it
// documents exactly what this version accepts). `make man` writes it to
// bin/opsmop.1 and `make install` installs it.
func manCommand(env Env, app *cli.App) *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff), generated from the commands and flags",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return invalid(errors.New("man: takes no arguments (opsmop man > opsmop.1)"))
			}
			page, err := app.ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("man: %w", err)
			}
			_, err = fmt.Fprint(env.Stdout, page)
			return err
		},
	}
}
