package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionShells are the shells `opsmop completion` writes scripts for.
func completionShells() []string { return []string{"bash", "zsh", "fish"} }

// completionCommand is `opsmop completion bash|zsh|fish`: it prints a
// completion script for the shell, generated from app's commands and
// their flags, so the script cannot fall behind the CLI.
func completionCommand(env Env, app *cli.App) *cli.Command {
	return &cli.Command{
		Name: "completion", Usage: "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "SHELL",
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return invalid(fmt.Errorf("completion: give one shell: opsmop completion %s", strings.Join(completionShells(), "|")))
			}
			return writeCompletion(env.Stdout, app, c.Args().First())
		},
	}
}

// writeCompletion writes app's completion script for shell to w.
func writeCompletion(w io.Writer, app *cli.App, shell string) error {
	var script string
	switch shell {
	case "bash":
		script = bashCompletion(app)
	case "zsh":
		script = zshCompletion(app)
	case "fish":
		script = fishCompletion(app)
	default:
		return invalid(fmt.Errorf("completion: unknown shell %q: give one of %s", shell, strings.Join(completionShells(), ", ")))
	}
	_, err := io.WriteString(w, script)
	if err != nil {
		return errors.Join(errors.New("completion: write the script"), err)
	}
	return nil
}

// complFlag is one flag as the completion scripts see it.
type complFlag struct {
	names []string // as typed: -l, --limit
	usage string
	value bool // takes a value
	file  bool // the value is a file
}

// complCommand is one command with its flags.
type complCommand struct {
	name, usage string
	flags       []complFlag
}

// completionModel lists app's visible commands and their flags (with
// --help), plus help.
func completionModel(app *cli.App) []complCommand {
	var out []complCommand
	for _, cmd := range app.Commands {
		if cmd.Hidden {
			continue
		}
		cc := complCommand{name: cmd.Name, usage: cmd.Usage}
		for _, f := range cmd.Flags {
			if slices.Contains(f.Names(), "help") {
				continue // urfave/cli's own, added when the command is set up
			}
			cf := complFlag{}
			for _, n := range f.Names() {
				cf.names = append(cf.names, dashed(n))
			}
			if d, ok := f.(cli.DocGenerationFlag); ok {
				cf.usage = strings.ReplaceAll(d.GetUsage(), "`", "")
				cf.value = d.TakesValue()
			}
			cf.file = slices.Contains(f.Names(), flagInventory) || slices.Contains(f.Names(), flagPrivateKey)
			cc.flags = append(cc.flags, cf)
		}
		cc.flags = append(cc.flags, complFlag{names: []string{"-h", "--help"}, usage: "show help"})
		out = append(out, cc)
	}
	return append(out, complCommand{name: "help", usage: "show help for a command"})
}

// bashCompletion is the bash script: commands first, then the command's
// flags (a word starting with -) or files.
func bashCompletion(app *cli.App) string {
	model := completionModel(app)
	var b strings.Builder
	b.WriteString("# bash completion for opsmop; load with: source <(opsmop completion bash)\n")
	b.WriteString("_opsmop() {\n")
	b.WriteString("    local cur prev cmd i\n")
	b.WriteString("    cur=\"${COMP_WORDS[COMP_CWORD]}\"\n")
	b.WriteString("    prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n")
	b.WriteString("    cmd=\"\"\n")
	b.WriteString("    for ((i = 1; i < COMP_CWORD; i++)); do\n")
	b.WriteString("        case \"${COMP_WORDS[i]}\" in\n")
	b.WriteString("            -*) ;;\n")
	b.WriteString("            *) cmd=\"${COMP_WORDS[i]}\"; break ;;\n")
	b.WriteString("        esac\n")
	b.WriteString("    done\n")
	var names []string
	for _, c := range model {
		names = append(names, c.name)
	}
	fmt.Fprintf(&b, "    if [[ -z \"$cmd\" ]]; then\n        COMPREPLY=($(compgen -W %s -- \"$cur\"))\n        return\n    fi\n", shSingle(strings.Join(names, " ")+" --help -h --version -v"))
	b.WriteString("    local flags=\"\" fileflags=\"\" valueflags=\"\"\n")
	b.WriteString("    case \"$cmd\" in\n")
	for _, c := range model {
		var all, files, values []string
		for _, f := range c.flags {
			all = append(all, f.names...)
			if f.file {
				files = append(files, f.names...)
			} else if f.value {
				values = append(values, f.names...)
			}
		}
		switch c.name {
		case "help":
			all = nil
			for _, o := range model {
				if o.name != "help" {
					all = append(all, o.name)
				}
			}
		case "completion":
			all = append(completionShells(), all...)
		}
		fmt.Fprintf(&b, "        %s) flags=%s fileflags=%s valueflags=%s ;;\n", c.name,
			shSingle(strings.Join(all, " ")), shSingle(strings.Join(files, " ")), shSingle(strings.Join(values, " ")))
	}
	b.WriteString("    esac\n")
	b.WriteString("    if [[ \" $fileflags \" == *\" $prev \"* ]]; then\n        COMPREPLY=($(compgen -f -- \"$cur\"))\n        return\n    fi\n")
	b.WriteString("    if [[ \" $valueflags \" == *\" $prev \"* ]]; then\n        COMPREPLY=()\n        return\n    fi\n")
	b.WriteString("    if [[ \"$cur\" == -* || \"$cmd\" == help || \"$cmd\" == completion ]]; then\n        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n        return\n    fi\n")
	b.WriteString("    COMPREPLY=($(compgen -f -- \"$cur\"))\n")
	b.WriteString("}\n")
	b.WriteString("complete -o filenames -F _opsmop opsmop\n")
	return b.String()
}

// zshCompletion is the zsh script (_arguments per command).
func zshCompletion(app *cli.App) string {
	model := completionModel(app)
	var b strings.Builder
	b.WriteString("#compdef opsmop\n")
	b.WriteString("# zsh completion for opsmop; load with: source <(opsmop completion zsh) (after compinit)\n")
	b.WriteString("_opsmop() {\n")
	b.WriteString("    local -a commands\n")
	b.WriteString("    commands=(\n")
	for _, c := range model {
		fmt.Fprintf(&b, "        %s\n", shSingle(strings.ReplaceAll(c.name, ":", "\\:")+":"+c.usage))
	}
	b.WriteString("    )\n")
	b.WriteString("    if (( CURRENT == 2 )); then\n        _describe 'command' commands\n        return\n    fi\n")
	b.WriteString("    local cmd=$words[2]\n")
	b.WriteString("    shift words\n    (( CURRENT-- ))\n")
	b.WriteString("    case $cmd in\n")
	for _, c := range model {
		fmt.Fprintf(&b, "        %s)\n", c.name)
		switch c.name {
		case "help":
			b.WriteString("            _describe 'command' commands\n            ;;\n")
			continue
		case "completion":
			fmt.Fprintf(&b, "            _values 'shell' %s\n            ;;\n", strings.Join(completionShells(), " "))
			continue
		}
		b.WriteString("            _arguments -s \\\n")
		for _, f := range c.flags {
			for _, n := range f.names {
				spec := n + "[" + zshEscape(f.usage) + "]"
				switch {
				case f.file:
					spec += ":file:_files"
				case f.value:
					spec += ":value: "
				}
				fmt.Fprintf(&b, "                %s \\\n", shSingle(spec))
			}
		}
		b.WriteString("                '*:file:_files'\n            ;;\n")
	}
	b.WriteString("    esac\n")
	b.WriteString("}\n")
	b.WriteString("compdef _opsmop opsmop\n")
	return b.String()
}

// fishCompletion is the fish script.
func fishCompletion(app *cli.App) string {
	model := completionModel(app)
	var b strings.Builder
	b.WriteString("# fish completion for opsmop; load with: opsmop completion fish | source\n")
	b.WriteString("complete -c opsmop -e\n")
	var names []string
	for _, c := range model {
		names = append(names, c.name)
	}
	for _, c := range model {
		fmt.Fprintf(&b, "complete -c opsmop -f -n %s -a %s -d %s\n", fishSingle("not __fish_seen_subcommand_from "+strings.Join(names, " ")), c.name, fishSingle(c.usage))
	}
	fmt.Fprintf(&b, "complete -c opsmop -f -n %s -a %s\n", fishSingle("__fish_seen_subcommand_from help"), fishSingle(strings.Join(names[:len(names)-1], " ")))
	fmt.Fprintf(&b, "complete -c opsmop -f -n %s -a %s\n", fishSingle("__fish_seen_subcommand_from completion"), fishSingle(strings.Join(completionShells(), " ")))
	for _, c := range model {
		cond := fishSingle("__fish_seen_subcommand_from " + c.name)
		for _, f := range c.flags {
			var parts []string
			for _, n := range f.names {
				if strings.HasPrefix(n, "--") {
					parts = append(parts, "-l "+n[2:])
				} else {
					parts = append(parts, "-s "+n[1:])
				}
			}
			opt := ""
			switch {
			case f.file:
				opt = " -r -F"
			case f.value:
				opt = " -x"
			}
			fmt.Fprintf(&b, "complete -c opsmop -n %s %s%s -d %s\n", cond, strings.Join(parts, " "), opt, fishSingle(f.usage))
		}
	}
	return b.String()
}

// shSingle quotes s for sh, bash and zsh as one single-quoted word.
func shSingle(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fishSingle quotes s for fish: in single quotes, \ and ' are escaped.
func fishSingle(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// zshEscape escapes the characters _arguments treats specially in a
// description: \, [, ] and :.
func zshEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`)
	return r.Replace(s)
}
