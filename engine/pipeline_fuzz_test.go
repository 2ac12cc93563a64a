package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// FuzzGuardScript runs the guard of an instance whose probe printed out
// (any bytes but NUL) and exited with code, against a real sh: it must
// pass while the probe prints the same, and fail when one byte differs
// or the status does.
func FuzzGuardScript(f *testing.F) {
	for _, s := range []string{"", "x", "type=file\nstat=644 0 0 root root 3\nblob=3\nabc", "'\"$`\\\n\n", "rc=0", "a\r\n\xff\xfe"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte("trailing newlines\n\n\n"), uint8(3))
	l := &connection.Local{}
	f.Fuzz(func(t *testing.T, out []byte, code uint8) {
		if bytes.IndexByte(out, 0) >= 0 || len(out) > 4096 {
			t.Skip()
		}
		probe := "printf %s " + shell.Quote(string(out)) + "; exit " + string('0'+rune(code%8))
		in := &instance{probe: probe}
		in.run.result = connection.Result{Stdout: out, ExitCode: int(code % 8)}
		run := func(script string) int {
			res, err := l.Run(context.Background(), script, nil)
			if err != nil {
				t.Fatal(err)
			}
			return res.ExitCode
		}
		if rc := run(guardScript(in, false)); rc != 0 {
			t.Fatalf("guard of a probe printing %q (status %d): got status %d; want 0", out, code%8, rc)
		}
		// With show, it also prints the probe's result, which
		// guardRecheck reads back.
		res, err := l.Run(context.Background(), guardScript(in, true), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := guardRecheck(res); res.ExitCode != 0 || !ok || !bytes.Equal(got.Stdout, out) || got.ExitCode != int(code%8) {
			t.Fatalf("guard showing a probe printing %q (status %d): got status %d, read back %q status %d (ok %v)", out, code%8, res.ExitCode, got.Stdout, got.ExitCode, ok)
		}
		in.run.result.ExitCode = int(code%8) + 1
		if rc := run(guardScript(in, false)); rc == 0 {
			t.Fatalf("guard expecting another status: got 0; want a failure")
		}
		if len(out) > 0 {
			in.run.result.ExitCode = int(code % 8)
			other := append([]byte(nil), out...)
			other[len(other)/2] ^= 0x01
			if other[len(other)/2] == 0 {
				other[len(other)/2] = 'x'
			}
			in.run.result.Stdout = other
			if rc := run(guardScript(in, false)); rc == 0 {
				t.Fatalf("guard expecting %q from a probe printing %q: got 0; want a failure", other, out)
			}
		}
	})
}
