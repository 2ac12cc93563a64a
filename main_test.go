package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// etcDefaultsEnv names the variable through which the test wrapper of the
// opsmop command learns which file stands in for
// /etc/opsmop/defaults.toml. Only the wrapper reads it; production code
// never does.
const etcDefaultsEnv = "OPSMOP_ETC_DEFAULTS"

// TestMain lets the test binary double as the opsmop command that the
// scripts in testdata/script run.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"opsmop": func() { os.Exit(testOpsmop()) },
	})
}

// testOpsmop is the opsmop command of the scripts: run with the process's
// streams, like main, except that the machine's /etc/opsmop/defaults.toml
// is replaced by the file named in $OPSMOP_ETC_DEFAULTS, which Setup always
// sets.
func testOpsmop() int {
	etc := os.Getenv(etcDefaultsEnv)
	if etc == "" {
		fmt.Fprintf(os.Stderr, "test wrapper: %s is not set; refusing to read the machine's /etc/opsmop/defaults.toml\n", etcDefaultsEnv)
		return 125
	}
	env := Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Getenv: os.Getenv, EtcDefaults: etc, EtcSSHConfig: etc + ".no-ssh-config",
	}
	return run(context.Background(), os.Args, env)
}

// TestScripts runs testdata/script/*.txtar. Each script gets HOME=$WORK/home
// (so ~/.opsmop and ~/.ssh are its own) and an /etc defaults file at
// $WORK/etc/opsmop/defaults.toml, which does not exist unless the script
// writes it. $POLICYDIR is the absolute path of testdata/policy, the
// example policies of docs/language.md.
func TestScripts(t *testing.T) {
	policyDir, err := filepath.Abs(filepath.Join("testdata", "policy"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			home := filepath.Join(e.WorkDir, "home")
			if err := os.MkdirAll(home, 0o755); err != nil {
				return err
			}
			e.Setenv("HOME", home)
			e.Setenv(etcDefaultsEnv, filepath.Join(e.WorkDir, "etc", "opsmop", "defaults.toml"))
			e.Setenv("NO_COLOR", "1")
			e.Setenv("POLICYDIR", policyDir)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":  cmdExitcode,
			"jsonlines": cmdJSONLines,
			"jsonkeys":  cmdJSONKeys,
			"retryfile": cmdRetryFile,
		},
	})
}

// cmdExitcode is `exitcode N PROGRAM [ARGS...]`: it runs PROGRAM like exec
// (its stdout and stderr become the script's stdout and stderr) and fails
// unless it exits with status N.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: exitcode N PROGRAM [ARGS...] (cannot be negated; give the expected code)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not an exit status", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: run %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status of %s: got %d; want %d", args[1], got, want)
	}
}

// cmdJSONLines is `jsonlines FILE [TYPE...]`: every non-empty line of FILE
// (stdout and stderr name the last command's output) must decode as a JSON
// object with a non-empty string "type", and each TYPE given must occur at
// least once. Negated, it asserts that some line is not such an object.
func cmdJSONLines(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: jsonlines FILE [TYPE...]")
	}
	data := ts.ReadFile(args[0])
	err := checkJSONLines([]byte(data), args[1:])
	switch {
	case neg && err == nil:
		ts.Fatalf("jsonlines %s: every line is a JSON event; want one that is not", args[0])
	case !neg && err != nil:
		ts.Fatalf("jsonlines %s: %v", args[0], err)
	}
}

// checkJSONLines reports the first line of data that is not a JSON object
// with a string "type", or a wanted type that no line has.
func checkJSONLines(data []byte, wantTypes []string) error {
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			return fmt.Errorf("line %d: %v: %q", n, err, line)
		}
		typ, ok := obj["type"].(string)
		if !ok || typ == "" {
			return fmt.Errorf("line %d: no string \"type\": %q", n, line)
		}
		seen[typ] = true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(seen) == 0 {
		return errors.New("no JSON lines at all")
	}
	for _, t := range wantTypes {
		if !seen[t] {
			return fmt.Errorf("no line of type %q", t)
		}
	}
	return nil
}

// cmdJSONKeys is `jsonkeys FILE OBJ KEY...`: FILE must hold one JSON object
// whose member OBJ is an object in which every KEY is a non-empty string.
func cmdJSONKeys(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: jsonkeys FILE OBJ KEY... (cannot be negated)")
	}
	if len(args) < 3 {
		ts.Fatalf("usage: jsonkeys FILE OBJ KEY...")
	}
	if err := checkJSONKeys([]byte(ts.ReadFile(args[0])), args[1], args[2:]); err != nil {
		ts.Fatalf("jsonkeys %s: %v", args[0], err)
	}
}

// checkJSONKeys reports why data is not a JSON object whose member obj
// holds a non-empty string under every key.
func checkJSONKeys(data []byte, obj string, keys []string) error {
	var top map[string]map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		return fmt.Errorf("not a JSON object of objects: %v", err)
	}
	m, ok := top[obj]
	if !ok {
		return fmt.Errorf("no member %q", obj)
	}
	for _, k := range keys {
		s, ok := m[k].(string)
		if !ok || s == "" {
			return fmt.Errorf("%s.%s: got %#v; want a non-empty string", obj, k, m[k])
		}
	}
	return nil
}

func TestCheckJSONKeys(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		keys    []string
		wantErr bool
	}{
		{"present", `{"h":{"a":"x","b":"y","n":2}}`, []string{"a", "b"}, false},
		{"missing key", `{"h":{"a":"x"}}`, []string{"a", "b"}, true},
		{"empty string", `{"h":{"a":""}}`, []string{"a"}, true},
		{"not a string", `{"h":{"a":2}}`, []string{"a"}, true},
		{"no such object", `{"g":{"a":"x"}}`, []string{"a"}, true},
		{"not json", `h: a`, []string{"a"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkJSONKeys([]byte(tt.data), "h", tt.keys)
			if (err != nil) != tt.wantErr {
				t.Errorf("checkJSONKeys(%s, %q) = %v; want error %v", tt.data, tt.keys, err, tt.wantErr)
			}
		})
	}
}

func TestCheckJSONLines(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    []string
		wantErr bool
	}{
		{"events", "{\"type\":\"run_start\"}\n{\"type\":\"summary\",\"x\":1}\n", []string{"run_start", "summary"}, false},
		{"blank lines ignored", "\n{\"type\":\"a\"}\n\n", nil, false},
		{"not json", "{\"type\":\"a\"}\nRECAP\n", nil, true},
		{"no type", "{\"host\":\"a\"}\n", nil, true},
		{"type not a string", "{\"type\":3}\n", nil, true},
		{"array", "[1]\n", nil, true},
		{"empty", "", nil, true},
		{"missing wanted type", "{\"type\":\"a\"}\n", []string{"summary"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkJSONLines([]byte(tt.data), tt.want)
			if (err != nil) != tt.wantErr {
				t.Errorf("checkJSONLines(%q) = %v; want error %v", tt.data, err, tt.wantErr)
			}
		})
	}
}

// cmdRetryFile is `retryfile POLICY`: it prints the --retry-failed file
// that a check or apply of POLICY (relative to $WORK) wrote under $HOME,
// so that scripts can read it without knowing its hashed name.
func cmdRetryFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: retryfile POLICY")
	}
	b, err := os.ReadFile(lastFailedPath(ts.Getenv("HOME"), ts.MkAbs(args[0])))
	ts.Check(err)
	_, err = ts.Stdout().Write(b)
	ts.Check(err)
}
