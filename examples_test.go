package main

// Examples: the Kubernetes Indexed Job (examples/k8s/opsmop-slices.yaml)
// and the CI matrix (examples/ci/slices.yml) that docs/scale.md shows for
// running N slices. No cluster or CI runner is available to the tests, so
// the files are checked against the Job schema fields they use (strictly:
// an unknown or misspelt key is an error) and their opsmop command lines
// against the CLI that newApp builds, with the helpers of
// docs_sweep_test.go. They run no command and contact no host.

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

const (
	// exampleJobFile is the Kubernetes Indexed Job example.
	exampleJobFile = "examples/k8s/opsmop-slices.yaml"
	// exampleCIFile is the GitHub Actions matrix example.
	exampleCIFile = "examples/ci/slices.yml"
	// exampleIndexExpr is how a pod's command turns its 0-based
	// JOB_COMPLETION_INDEX into the 1-based K of --slice K/N.
	exampleIndexExpr = "$((JOB_COMPLETION_INDEX+1))"
	// exampleTolerate ends a pod's command: opsmop's exit 1 (hosts
	// failed, reported in the stream) must not fail the pod.
	exampleTolerate = " || [ $? -eq 1 ]"
)

// k8sJob holds the fields of a batch/v1 Job that the example uses, named
// as in the Kubernetes API; decoding is strict, so any other key fails
// (naming the type, k8sJobSpec etc., where the key was).
type k8sJob struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec k8sJobSpec `yaml:"spec"`
}

// k8sJobSpec is a Job's spec.
type k8sJobSpec struct {
	CompletionMode          string         `yaml:"completionMode"`
	Completions             *int           `yaml:"completions"`
	Parallelism             *int           `yaml:"parallelism"`
	BackoffLimit            *int           `yaml:"backoffLimit"`
	ActiveDeadlineSeconds   *int           `yaml:"activeDeadlineSeconds"`
	TTLSecondsAfterFinished *int           `yaml:"ttlSecondsAfterFinished"`
	Template                k8sPodTemplate `yaml:"template"`
}

// k8sPodTemplate is a Job's spec.template.
type k8sPodTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec k8sPodSpec `yaml:"spec"`
}

// k8sPodSpec is spec.template.spec: the pods'.
type k8sPodSpec struct {
	RestartPolicy string         `yaml:"restartPolicy"`
	Containers    []k8sContainer `yaml:"containers"`
	Volumes       []k8sVolume    `yaml:"volumes"`
}

// k8sContainer is a pod's container, the fields the example uses.
type k8sContainer struct {
	Name       string   `yaml:"name"`
	Image      string   `yaml:"image"`
	WorkingDir string   `yaml:"workingDir"`
	Command    []string `yaml:"command"`
	Args       []string `yaml:"args"`
	Env        []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// k8sVolume is a pod's volume: a name and exactly one source.
type k8sVolume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name string `yaml:"name"`
	} `yaml:"configMap"`
	Secret *struct {
		SecretName  string `yaml:"secretName"`
		DefaultMode *int   `yaml:"defaultMode"`
	} `yaml:"secret"`
	PersistentVolumeClaim *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
	EmptyDir *struct{} `yaml:"emptyDir"`
}

// exampleStrict decodes one YAML document into v, refusing unknown keys
// and a second document.
func exampleStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("more than one YAML document")
	}
	return nil
}

// exampleSliceRe finds the value of --slice on an expanded command line.
var exampleSliceRe = regexp.MustCompile(`--slice[ =](\S+)`)

// exampleCheckOpsmop checks one expanded opsmop command line: it parses
// with the real CLI (sweepCheckLine), is the wanted command, and its
// --slice is exactly K/N. It returns the words up to the first
// redirection, and the problems.
func exampleCheckOpsmop(app *cli.App, line, command string, k, n int) ([]string, []string) {
	words, err := sweepShellWords(line)
	if err != nil {
		return nil, []string{fmt.Sprintf("%s: %v", line, err)}
	}
	if len(words) < 2 || words[0] != "opsmop" || words[1] != command {
		return words, []string{fmt.Sprintf("got command line %q; want opsmop %s ...", line, command)}
	}
	var problems []string
	for _, p := range sweepCheckLine(app, words, true) {
		problems = append(problems, fmt.Sprintf("%s: %s", line, p))
	}
	m := exampleSliceRe.FindStringSubmatch(strings.Join(words, " "))
	if m == nil {
		return words, append(problems, fmt.Sprintf("%s: no --slice", line))
	}
	spec, err := parseSlice(m[1])
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("%s: %v", line, err))
	case spec.K != k || spec.N != n:
		problems = append(problems, fmt.Sprintf("%s: got --slice %s; want %d/%d", line, spec, k, n))
	}
	return words, problems
}

// validateSliceJob returns every problem of an Indexed Job manifest that
// runs opsmop in N slices.
func validateSliceJob(app *cli.App, data []byte) []string {
	var job k8sJob
	if err := exampleStrict(data, &job); err != nil {
		return []string{"decode: " + err.Error()}
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	spec := job.Spec
	pod := spec.Template.Spec
	if job.APIVersion != "batch/v1" || job.Kind != "Job" {
		bad("got apiVersion %q kind %q; want batch/v1 Job", job.APIVersion, job.Kind)
	}
	if !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(job.Metadata.Name) || len(job.Metadata.Name) > 63 {
		bad("got metadata.name %q; want a DNS label", job.Metadata.Name)
	}
	if spec.CompletionMode != "Indexed" {
		bad("got spec.completionMode %q; want Indexed (the pods' JOB_COMPLETION_INDEX picks the slice)", spec.CompletionMode)
	}
	n := 0
	switch {
	case spec.Completions == nil || spec.Parallelism == nil:
		bad("spec.completions and spec.parallelism must both be set (to N)")
	case *spec.Completions < 1 || *spec.Completions != *spec.Parallelism:
		bad("got spec.completions %d, spec.parallelism %d; want the same N >= 1", *spec.Completions, *spec.Parallelism)
	default:
		n = *spec.Completions
	}
	if spec.BackoffLimit == nil || *spec.BackoffLimit < 0 {
		bad("spec.backoffLimit must be set (0 or more)")
	}
	if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
		bad("got template.spec.restartPolicy %q; want Never or OnFailure (a Job's pods)", pod.RestartPolicy)
	}

	volumes := map[string]k8sVolume{}
	for _, v := range pod.Volumes {
		if v.Name == "" {
			bad("a volume has no name")
			continue
		}
		if _, dup := volumes[v.Name]; dup {
			bad("volume %q declared twice", v.Name)
		}
		volumes[v.Name] = v
		sources := 0
		if v.ConfigMap != nil {
			sources++
			if v.ConfigMap.Name == "" {
				bad("volume %q: configMap without a name", v.Name)
			}
		}
		if v.Secret != nil {
			sources++
			if v.Secret.SecretName == "" {
				bad("volume %q: secret without a secretName", v.Name)
			}
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
				bad("volume %q: the SSH key's secret must have defaultMode 0400", v.Name)
			}
		}
		if v.PersistentVolumeClaim != nil {
			sources++
			if v.PersistentVolumeClaim.ClaimName == "" {
				bad("volume %q: persistentVolumeClaim without a claimName", v.Name)
			}
		}
		if v.EmptyDir != nil {
			sources++
		}
		if sources != 1 {
			bad("volume %q: got %d sources; want exactly one (configMap, secret, persistentVolumeClaim or emptyDir)", v.Name, sources)
		}
	}

	if len(pod.Containers) == 0 {
		bad("template.spec.containers is empty")
	}
	for _, c := range pod.Containers {
		if c.Name == "" || c.Image == "" || len(c.Command) == 0 {
			bad("container %q: name, image and command must all be set", c.Name)
		}
		mounts := map[string]k8sVolume{} // by mountPath
		writable := map[string]bool{}
		for _, m := range c.VolumeMounts {
			v, ok := volumes[m.Name]
			if !ok {
				bad("container %q: volumeMount %q names no declared volume", c.Name, m.Name)
				continue
			}
			if !path.IsAbs(m.MountPath) {
				bad("container %q: volumeMount %q: mountPath %q is not absolute", c.Name, m.Name, m.MountPath)
			}
			if _, dup := mounts[m.MountPath]; dup {
				bad("container %q: two volumes mounted at %q", c.Name, m.MountPath)
			}
			mounts[m.MountPath] = v
			writable[m.MountPath] = !m.ReadOnly
		}
		// mountOf returns the mount holding the absolute path p.
		mountOf := func(p string) (string, k8sVolume, bool) {
			best := ""
			for mp := range mounts {
				if (p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
					best = mp
				}
			}
			v, ok := mounts[best]
			return best, v, ok
		}
		if len(c.Command) != 3 || (c.Command[0] != "sh" && c.Command[0] != "/bin/sh") || c.Command[1] != "-c" || len(c.Args) != 0 {
			bad("container %q: got command %q; want [sh -c SCRIPT] (the shell computes the slice from JOB_COMPLETION_INDEX)", c.Name, c.Command)
			continue
		}
		script := strings.Join(strings.Fields(c.Command[2]), " ")
		if !strings.HasSuffix(script, exampleTolerate) {
			bad("container %q: the command does not end in %q: a pod whose hosts failed (exit 1) would fail the Job, and Kubernetes would stop the other slices", c.Name, exampleTolerate)
		}
		script = strings.TrimSuffix(script, exampleTolerate)
		if !strings.Contains(script, exampleIndexExpr) {
			bad("container %q: the command does not use %s", c.Name, exampleIndexExpr)
			continue
		}
		if n == 0 {
			continue
		}
		for idx := range n {
			k := idx + 1
			line := strings.ReplaceAll(script, exampleIndexExpr, strconv.Itoa(k))
			if strings.Contains(line, "$") {
				bad("container %q: the command has an expansion other than %s: %s", c.Name, exampleIndexExpr, line)
				break
			}
			words, ps := exampleCheckOpsmop(app, line, "apply", k, n)
			problems = append(problems, ps...)
			if !slices.Contains(words, "--json") {
				bad("container %q: pod %d: no --json: opsmop recap reads --json streams", c.Name, idx)
			}
			for i, w := range words {
				if w == "--private-key" && i+1 < len(words) {
					if _, v, ok := mountOf(words[i+1]); !ok || v.Secret == nil {
						bad("container %q: --private-key %s is not on a Secret volume", c.Name, words[i+1])
					}
				}
			}
			_, redirect, ok := strings.Cut(line, ">")
			want := fmt.Sprintf("slice-%d.json", k)
			out := strings.TrimSpace(redirect)
			mp, v, onMount := mountOf(out)
			switch {
			case !ok || path.Base(out) != want:
				bad("container %q: pod %d: got output %q; want the stream written to a file named %s", c.Name, idx, out, want)
			case !onMount || v.PersistentVolumeClaim == nil || !writable[mp]:
				bad("container %q: pod %d: output %s is not on a writable persistentVolumeClaim mount (opsmop recap reads the streams from there)", c.Name, idx, out)
			}
			if ps != nil {
				break // the same problem for every pod
			}
		}
		if c.WorkingDir != "" {
			if _, _, ok := mountOf(c.WorkingDir); !ok {
				bad("container %q: workingDir %s is on no volume (the policy is not there)", c.Name, c.WorkingDir)
			}
		}
	}
	return problems
}

// TestExampleK8sJob validates examples/k8s/opsmop-slices.yaml, and shows
// that the validation fails for each kind of break in it.
func TestExampleK8sJob(t *testing.T) {
	app := sweepApp(t)
	data, err := os.ReadFile(exampleJobFile)
	if err != nil {
		t.Fatalf("read the example: %v", err)
	}
	src := string(data)
	tests := []struct {
		name     string
		old, new string // replaced once in the manifest; "" for the manifest as it is
		want     string // a problem containing this; "" for none
	}{
		{"as written", "", "", ""},
		{"typo at spec level", "completionMode: Indexed", "completionmode: Indexed", "field completionmode not found"},
		{"typo at Job level", "kind: Job\n", "kind: Job\nspc: {}\n", "field spc not found"},
		{"not indexed", "completionMode: Indexed", "completionMode: NonIndexed", "want Indexed"},
		{"parallelism differs", "parallelism: 4", "parallelism: 3", "want the same N"},
		{"N differs from the command", "completions: 4\n  parallelism: 4", "completions: 5\n  parallelism: 5", "want 1/5"},
		{"no backoffLimit", "  backoffLimit: 0\n", "", "backoffLimit must be set"},
		{"restartPolicy Always", "restartPolicy: Never", "restartPolicy: Always", "want Never or OnFailure"},
		{"no image", "image: registry.example.com/opsmop:0.1.0", "", "name, image and command"},
		{"mount of an undeclared volume", "- name: results\n              mountPath", "- name: result\n              mountPath", `volumeMount "result" names no declared volume`},
		{"secret without a name", "secretName: opsmop-ssh", "secretName: ''", "secret without a secretName"},
		{"key readable by all", "defaultMode: 0400", "defaultMode: 0644", "defaultMode 0400"},
		{"claim without a name", "claimName: opsmop-results", "claimName: ''", "without a claimName"},
		{"same slice in every pod", "--slice $((JOB_COMPLETION_INDEX+1))/4", "--slice 1/4", "got --slice 1/4; want 2/4"},
		{"index not used", "--slice $((JOB_COMPLETION_INDEX+1))/4 --json\n              > /results/slice-$((JOB_COMPLETION_INDEX+1)).json", "--slice 1/4 --json\n              > /results/slice-1.json", "does not use"},
		{"zero-based slice", "--slice $((JOB_COMPLETION_INDEX+1))/4", "--slice ${JOB_COMPLETION_INDEX}/4", "expansion other than"},
		{"unknown flag", "--private-key", "--ssh-private-key", "--ssh-private-key is not a flag of apply"},
		{"no --json", " --json\n", "\n", "no --json"},
		{"a failed host fails the Job", " || [ $? -eq 1 ]", "", "does not end in"},
		{"results not on the claim", "> /results/slice-", "> /tmp/slice-", "not on a writable persistentVolumeClaim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := src
			if tt.old != "" {
				if strings.Count(doc, tt.old) != 1 {
					t.Fatalf("%q occurs %d times in %s; want once (the example changed: update this case)", tt.old, strings.Count(doc, tt.old), exampleJobFile)
				}
				doc = strings.Replace(doc, tt.old, tt.new, 1)
			}
			problems := validateSliceJob(app, []byte(doc))
			if tt.want == "" {
				if len(problems) > 0 {
					t.Errorf("%s: got problems:\n%s\nwant none", exampleJobFile, strings.Join(problems, "\n"))
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("got problems %q; want one containing %q", problems, tt.want)
			}
		})
	}
}

// ciWorkflow holds the keys of a GitHub Actions workflow that the example
// uses; decoding is strict.
type ciWorkflow struct {
	Name string         `yaml:"name"`
	On   map[string]any `yaml:"on"`
	Jobs map[string]struct {
		Needs    string `yaml:"needs"`
		If       string `yaml:"if"`
		RunsOn   string `yaml:"runs-on"`
		Strategy *struct {
			FailFast *bool            `yaml:"fail-fast"`
			Matrix   map[string][]int `yaml:"matrix"`
		} `yaml:"strategy"`
		Steps []struct {
			Name string            `yaml:"name"`
			If   string            `yaml:"if"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// validateSliceCI returns every problem of a workflow that applies N
// slices as a matrix and merges them in a last job with opsmop recap.
func validateSliceCI(app *cli.App, data []byte) []string {
	var wf ciWorkflow
	if err := exampleStrict(data, &wf); err != nil {
		return []string{"decode: " + err.Error()}
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var slicesList []int
	for name, job := range wf.Jobs {
		if job.Strategy != nil && job.Strategy.Matrix["slice"] != nil {
			slicesList = job.Strategy.Matrix["slice"]
			if job.Strategy.FailFast == nil || *job.Strategy.FailFast {
				bad("job %s: fail-fast must be false: a failing slice must not cancel the others", name)
			}
		}
	}
	n := len(slicesList)
	for i, k := range slicesList {
		if k != i+1 {
			bad("got matrix slice %v; want 1..N in order", slicesList)
			break
		}
	}
	if n == 0 {
		bad("no job has a matrix of slices")
	}
	applies, recaps := 0, 0
	for name, job := range wf.Jobs {
		for _, st := range job.Steps {
			for _, l := range strings.Split(st.Run, "\n") {
				l = strings.TrimSpace(l)
				if !strings.HasPrefix(l, "opsmop ") {
					continue
				}
				if strings.HasPrefix(l, "opsmop recap ") {
					recaps++
					words, err := sweepShellWords(l)
					if err != nil {
						bad("job %s: %s: %v", name, l, err)
						continue
					}
					for _, p := range sweepCheckLine(app, words, true) {
						bad("job %s: %s: %s", name, l, p)
					}
					var want []string
					for k := 1; k <= n; k++ {
						want = append(want, fmt.Sprintf("slice-%d.json", k))
					}
					if got := words[2:]; !slices.Equal(got, want) {
						bad("job %s: got recap of %q; want %q", name, got, want)
					}
					if job.Needs == "" || job.If != "always()" {
						bad("job %s: the recap job must need the slices and run always() (also when a slice failed)", name)
					}
					continue
				}
				if !strings.Contains(l, "${{ matrix.slice }}") {
					bad("job %s: %s: not parameterised by ${{ matrix.slice }}", name, l)
					continue
				}
				applies++
				for _, k := range slicesList {
					line := strings.ReplaceAll(l, "${{ matrix.slice }}", strconv.Itoa(k))
					words, ps := exampleCheckOpsmop(app, line, "apply", k, n)
					problems = append(problems, ps...)
					if !slices.Contains(words, "--json") {
						bad("job %s: %s: no --json", name, line)
					}
					if !strings.Contains(line, fmt.Sprintf("> slice-%d.json", k)) {
						bad("job %s: %s: the stream does not go to slice-%d.json", name, line, k)
					}
				}
			}
		}
	}
	if applies == 0 || recaps == 0 {
		bad("got %d opsmop apply and %d opsmop recap lines; want at least one of each", applies, recaps)
	}
	return problems
}

// TestExampleCISlices validates examples/ci/slices.yml, and shows that the
// validation fails for each kind of break in it.
func TestExampleCISlices(t *testing.T) {
	app := sweepApp(t)
	data, err := os.ReadFile(exampleCIFile)
	if err != nil {
		t.Fatalf("read the example: %v", err)
	}
	src := string(data)
	tests := []struct {
		name, old, new, want string
	}{
		{"as written", "", "", ""},
		{"typo in a key", "runs-on: ubuntu-latest\n    strategy", "run-on: ubuntu-latest\n    strategy", "field run-on not found"},
		{"N differs from the matrix", "--slice ${{ matrix.slice }}/4", "--slice ${{ matrix.slice }}/3", "want 1/4"},
		{"unknown flag", "--private-key", "--key", "--key is not a flag of apply"},
		{"a slice missing from the recap", "slice-3.json slice-4.json", "slice-4.json", "got recap of"},
		{"fail-fast", "fail-fast: false", "fail-fast: true", "fail-fast must be false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := src
			if tt.old != "" {
				if strings.Count(doc, tt.old) != 1 {
					t.Fatalf("%q occurs %d times in %s; want once (the example changed: update this case)", tt.old, strings.Count(doc, tt.old), exampleCIFile)
				}
				doc = strings.Replace(doc, tt.old, tt.new, 1)
			}
			problems := validateSliceCI(app, []byte(doc))
			if tt.want == "" {
				if len(problems) > 0 {
					t.Errorf("%s: got problems:\n%s\nwant none", exampleCIFile, strings.Join(problems, "\n"))
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("got problems %q; want one containing %q", problems, tt.want)
			}
		})
	}
}
