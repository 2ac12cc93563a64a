package inventory

import (
	"bytes"
	"encoding/json"

	yaml "go.yaml.in/yaml/v3"

	"github.com/opsmop/opsmop/internal/yamlsafe"
)

// Host order: an inventory keeps its hosts in the order in which their
// names first appear in the text of the file (or of a script's output),
// wherever a host name is written: as a key of groups.NAME.hosts, as an
// item of a groups.NAME.hosts list, or as a key of hosts (TOML, YAML); in
// a group's host list or as a key of _meta.hostvars (JSON). The decoders
// that read the inventories decode into Go maps, which have no order, so
// the order is read from the parser's nodes (TOML, YAML) or a second pass
// over the JSON tokens. build places any host these passes miss after the
// others, sorted by name.

// hostSeq collects host names in the order they are first seen.
type hostSeq struct {
	seen  map[string]bool
	names []string
}

func (s *hostSeq) add(name string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	if !s.seen[name] {
		s.seen[name] = true
		s.names = append(s.names, name)
	}
}

// key records a key path of a TOML or YAML inventory where it is written:
// groups.G.hosts.H... and hosts.H... name the host H.
func (s *hostSeq) key(path []string) {
	switch {
	case len(path) >= 4 && path[0] == "groups" && path[2] == "hosts":
		s.add(path[3])
	case len(path) >= 2 && path[0] == "hosts":
		s.add(path[1])
	}
}

// listItem records a string item of the list at path: the items of a
// groups.G.hosts list are host names.
func (s *hostSeq) listItem(path []string, item string) {
	if len(path) == 3 && path[0] == "groups" && path[2] == "hosts" {
		s.add(item)
	}
}

// yamlHostOrder returns the host names of a YAML inventory (its top
// mapping) in the order they first appear, following aliases and merge
// keys (<<) where they are written (yamlsafe.Pairs). Call it only on a
// document yamlValue accepted: that bounds what aliases expand to and
// rules out cycles.
func yamlHostOrder(top *yaml.Node) []string {
	var seq hostSeq
	// entries calls f with each scalar key of mapping n and its value.
	entries := func(n *yaml.Node, f func(key string, v *yaml.Node)) {
		yamlsafe.Pairs(n, func(k, v *yaml.Node) {
			if k = yamlsafe.Deref(k); k.Kind != yaml.ScalarNode {
				return
			}
			if key, err := yamlKey(k); err == nil {
				f(key, v)
			}
		})
	}
	addKey := func(host string, _ *yaml.Node) { seq.add(host) }
	entries(top, func(key string, v *yaml.Node) {
		switch key {
		case "groups":
			entries(v, func(_ string, g *yaml.Node) {
				entries(g, func(key string, hosts *yaml.Node) {
					if key != "hosts" {
						return
					}
					hosts = yamlsafe.Deref(hosts)
					if hosts == nil || hosts.Kind != yaml.SequenceNode {
						entries(hosts, addKey)
						return
					}
					for _, e := range hosts.Content {
						var item any
						if e = yamlsafe.Deref(e); e.Kind == yaml.ScalarNode && e.Decode(&item) == nil {
							if s, ok := item.(string); ok {
								seq.add(s)
							}
						}
					}
				})
			})
		case "hosts":
			entries(v, addKey)
		}
	})
	return seq.names
}

// jsonShapeError stops jsonHostOrder at a value of an unexpected kind.
type jsonShapeError struct{}

func (jsonShapeError) Error() string { return "unexpected JSON value" }

// jsonHostOrder returns the host names of an Ansible inventory JSON
// document in the order they first appear: in groups' host lists and as
// keys of _meta.hostvars. On a document of another shape it returns the
// names found before the surprise.
func jsonHostOrder(b []byte) []string {
	var seq hostSeq
	dec := json.NewDecoder(bytes.NewReader(b))
	_ = jsonObject(dec, func(key string) error {
		if key == "_meta" {
			return jsonObject(dec, func(key string) error {
				if key != "hostvars" {
					return jsonSkip(dec)
				}
				return jsonObject(dec, func(host string) error {
					seq.add(host)
					return jsonSkip(dec)
				})
			})
		}
		// A group: a list of host names, or an object with hosts.
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['):
			return jsonStrings(dec, seq.add)
		case json.Delim('{'):
			return jsonMembers(dec, func(key string) error {
				if key != "hosts" {
					return jsonSkip(dec)
				}
				tok, err := dec.Token()
				switch {
				case err != nil:
					return err
				case tok == nil:
					return nil
				case tok != json.Delim('['):
					return jsonShapeError{}
				}
				return jsonStrings(dec, seq.add)
			})
		}
		if _, ok := tok.(json.Delim); ok {
			return jsonShapeError{}
		}
		return nil // a scalar, read whole
	})
	return seq.names
}

// jsonObject reads an object (or null) from dec, calling f with each key;
// f must read the key's value.
func jsonObject(dec *json.Decoder, f func(key string) error) error {
	tok, err := dec.Token()
	switch {
	case err != nil:
		return err
	case tok == nil:
		return nil
	case tok != json.Delim('{'):
		return jsonShapeError{}
	}
	return jsonMembers(dec, f)
}

// jsonMembers reads the members of an object whose "{" has been read.
func jsonMembers(dec *json.Decoder, f func(key string) error) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return jsonShapeError{}
		}
		if err := f(key); err != nil {
			return err
		}
	}
	_, err := dec.Token() // "}"
	return err
}

// jsonStrings reads the items of a list whose "[" has been read, calling
// add with each string.
func jsonStrings(dec *json.Decoder, add func(string)) error {
	for dec.More() {
		var item any
		if err := dec.Decode(&item); err != nil {
			return err
		}
		if s, ok := item.(string); ok {
			add(s)
		}
	}
	_, err := dec.Token() // "]"
	return err
}

// jsonSkip reads the next value whole.
func jsonSkip(dec *json.Decoder) error {
	var raw json.RawMessage
	return dec.Decode(&raw)
}
