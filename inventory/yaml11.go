package inventory

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Ansible reads YAML inventories with PyYAML, which resolves plain
// (unquoted, untagged) scalars by YAML 1.1's rules: yes/no/on/off are
// booleans, 0644 is the octal integer 420, 1e3 is a string (a 1.1 float
// needs a point), 1:20 is the sexagesimal integer 80. yaml.v3 follows YAML
// 1.2. yaml11Retag gives every plain scalar of an Ansible YAML inventory
// the tag PyYAML would resolve it to, so that it decodes to the value
// Ansible sees; what opsmop cannot reproduce (sexagesimal numbers,
// infinities and NaN, timestamps with a time) is an error asking to quote
// the value.

// yaml11 holds the YAML 1.1 resolution patterns (PyYAML's).
type yaml11 struct {
	boolean, integer, float, sexagesimal, timestamp *regexp.Regexp
}

func newYAML11() *yaml11 {
	return &yaml11{
		boolean:     regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`),
		integer:     regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$`),
		float:       regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)$`),
		sexagesimal: regexp.MustCompile(`^(?:[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`),
		timestamp:   regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}`),
	}
}

// yaml11Retag retags the plain scalars under n (mapping keys excepted).
func yaml11Retag(n *yaml.Node) error {
	y := newYAML11()
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				if err := walk(c); err != nil {
					return err
				}
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				if err := walk(n.Content[i]); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			return y.retag(n)
		}
		return nil
	}
	return walk(n)
}

func (y *yaml11) retag(n *yaml.Node) error {
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 || (n.Tag != "" && n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool" && n.Tag != "!!null" && n.Tag != "!!timestamp") {
		return nil
	}
	if n.Tag != "" && n.ShortTag() != n.Tag {
		return nil
	}
	// Only implicit (resolved) tags are replaced: an explicit !!str stays.
	if n.Style&yaml.TaggedStyle != 0 {
		return nil
	}
	s := n.Value
	switch {
	case s == "" || s == "~" || s == "null" || s == "Null" || s == "NULL":
		n.Tag = "!!null"
	case y.boolean.MatchString(s):
		n.Tag, n.Value = "!!bool", strconv.FormatBool(strings.ContainsRune("yYtT", rune(s[0])) || strings.ToLower(s) == "on")
	case y.integer.MatchString(s):
		v := strings.ReplaceAll(s, "_", "")
		neg := strings.HasPrefix(v, "-")
		v = strings.TrimLeft(v, "+-")
		base := 10
		switch {
		case strings.HasPrefix(v, "0b"):
			base, v = 2, v[2:]
		case strings.HasPrefix(v, "0x"):
			base, v = 16, v[2:]
		case len(v) > 1 && v[0] == '0':
			base, v = 8, v[1:]
		}
		i, ok := new(big.Int).SetString(v, base)
		if !ok || !i.IsInt64() {
			return fmt.Errorf("line %d: the integer %s is too large; quote it", n.Line, s)
		}
		if neg {
			i.Neg(i)
		}
		n.Tag, n.Value = "!!int", i.String()
	case y.float.MatchString(s):
		f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil {
			return fmt.Errorf("line %d: the number %s is out of range; quote it", n.Line, s)
		}
		n.Tag, n.Value = "!!float", strconv.FormatFloat(f, 'g', -1, 64)
	case y.sexagesimal.MatchString(s) || y.timestamp.MatchString(s):
		return fmt.Errorf("line %d: %s is a YAML 1.1 value (a base-60 number, an infinity, NaN or a time) that Ansible converts and opsmop does not; quote it", n.Line, s)
	default:
		// Marked as quoted: yaml.v3 resolves a plain scalar even when
		// tagged !!str (a date would become a time.Time).
		n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
	}
	return nil
}
