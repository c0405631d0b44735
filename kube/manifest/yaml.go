package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// Marshal renders a typed Kubernetes object as YAML the way kubectl prints
// it (keys sorted, through the object's JSON form), without the empty
// status of an object that was never stored.
func Marshal(obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("manifest: marshal: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: marshal: %w", err)
	}
	if s, ok := m["status"].(map[string]any); ok && len(s) == 0 {
		delete(m, "status")
	}
	return sigsyaml.Marshal(m)
}

// chunk is one document of a multi-document YAML stream: the separator
// line that opened it (empty for the first document) and its body, both
// exactly as read.
type chunk struct {
	sep  string
	body string
}

// splitDocuments splits a YAML stream at its "---" lines, as kubectl does,
// keeping every byte: concatenating sep+body of all chunks gives data back.
func splitDocuments(data []byte) []chunk {
	var chunks []chunk
	cur := chunk{}
	var body strings.Builder
	for rest := string(data); rest != ""; {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if isSeparator(line) {
			cur.body = body.String()
			chunks = append(chunks, cur)
			cur = chunk{sep: line}
			body.Reset()
			continue
		}
		body.WriteString(line)
	}
	cur.body = body.String()
	return append(chunks, cur)
}

func isSeparator(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	rest := line[3:]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

// style is how a document was indented, so that a re-encoded document
// reads like the one it replaces.
type style struct {
	indent  int
	compact bool // "- " at the parent key's column (kubectl's style)
}

// detectStyle reads the indentation of a document: the smallest indent of
// a nested line, and whether sequences under a key start at the key's
// column. It defaults to kubectl's: 2 spaces, compact sequences.
func detectStyle(body string) style {
	st := style{indent: 0, compact: true}
	decided := false
	prevIndent, prevKey := -1, false
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		ind := len(line) - len(trimmed)
		if ind > 0 && !strings.HasPrefix(trimmed, "- ") && (st.indent == 0 || ind < st.indent) {
			st.indent = ind
		}
		if strings.HasPrefix(trimmed, "- ") && prevKey && !decided {
			st.compact = ind == prevIndent
			decided = true
		}
		prevIndent = ind
		t := strings.TrimRight(trimmed, " \r")
		if i := strings.Index(t, " #"); i >= 0 {
			t = strings.TrimRight(t[:i], " ")
		}
		prevKey = strings.HasSuffix(t, ":")
	}
	if st.indent < 2 || st.indent > 9 {
		st.indent = 2
	}
	return st
}

// encodeDocument encodes a document node in the given style, keeping the
// run of blank lines that ended the original body.
func encodeDocument(doc *yaml.Node, st style, original string) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(st.indent)
	if st.compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(doc); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	trimmed := strings.TrimRight(original, "\n")
	if n := len(original) - len(trimmed); n > 1 {
		buf.WriteString(strings.Repeat("\n", n-1))
	}
	return buf.String(), nil
}

// Helpers on yaml.v3 mapping nodes.

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// getString returns the scalar value of key in m, or "".
func getString(m *yaml.Node, key string) string {
	if v := get(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// stringMap reads a mapping of scalars (labels, annotations).
func stringMap(m *yaml.Node) map[string]string {
	out := map[string]string{}
	if m == nil || m.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if v := m.Content[i+1]; v.Kind == yaml.ScalarNode {
			out[m.Content[i].Value] = v.Value
		}
	}
	return out
}

// isNull reports whether n is absent or an explicit null.
func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// ensure returns the value of key in m, creating it with the given kind
// (a mapping or sequence) when it is missing or null. A new key goes
// before the key named before when m has it, else at the end.
func ensure(m *yaml.Node, key string, kind yaml.Kind, before string) (*yaml.Node, error) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		if isNull(v) {
			v = &yaml.Node{Kind: kind, Tag: tagOf(kind)}
			m.Content[i+1] = v
		}
		if v.Kind != kind {
			return nil, fmt.Errorf("%s is not a %s", key, kindName(kind))
		}
		return v, nil
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	v := &yaml.Node{Kind: kind, Tag: tagOf(kind)}
	block(m)
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if before != "" && m.Content[i].Value == before {
			at = i
			break
		}
	}
	m.Content = append(m.Content[:at], append([]*yaml.Node{k, v}, m.Content[at:]...)...)
	return v, nil
}

// setString sets key in mapping m to a string scalar, quoted as the
// value it replaces was.
func setString(m *yaml.Node, key, value string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			old := m.Content[i+1]
			n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, LineComment: old.LineComment}
			if old.Kind == yaml.ScalarNode {
				n.Style = old.Style &^ (yaml.LiteralStyle | yaml.FoldedStyle)
			}
			m.Content[i+1] = n
			return
		}
	}
	block(m)
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// block turns a flow collection ({} or []) that is about to grow into a
// block one, so that what is added reads like the rest of the document.
func block(n *yaml.Node) { n.Style &^= yaml.FlowStyle }

func tagOf(k yaml.Kind) string {
	if k == yaml.SequenceNode {
		return "!!seq"
	}
	return "!!map"
}

func kindName(k yaml.Kind) string {
	if k == yaml.SequenceNode {
		return "list"
	}
	return "mapping"
}

// toNode converts a typed object into a yaml.v3 node, through the same
// rendering as Marshal.
func toNode(obj any) (*yaml.Node, error) {
	b, err := Marshal(obj)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

// fromNode decodes a yaml.v3 node into a typed object through its JSON
// form, as the API server would read it.
func fromNode(n *yaml.Node, obj any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return sigsyaml.Unmarshal(b, obj)
}
