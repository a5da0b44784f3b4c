package ewstest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The three namespaces of an EWS request and response ([MS-OXWS]:
// SOAP 1.1 envelope, the messages schema and the types schema).
const (
	nsSOAP     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsMessages = "http://schemas.microsoft.com/exchange/services/2006/messages"
	nsTypes    = "http://schemas.microsoft.com/exchange/services/2006/types"
)

// node is one XML element. The server keeps items as element trees, the
// way a client sent them, so any property of the EWS types schema
// round-trips without the server modelling it; the properties the server
// computes (ids, change keys, times, occurrence lists) it sets itself.
type node struct {
	Space, Local string
	Attr         []xml.Attr
	Text         string
	Kids         []*node
}

// maxDepth bounds the nesting a request may have (EWS documents nest
// fewer than 15 levels).
const maxDepth = 64

var errTooDeep = errors.New("ewstest: XML nested too deeply")

// parseXML reads one document into a tree.
func parseXML(r io.Reader) (*node, error) {
	d := xml.NewDecoder(r)
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, errTooDeep
			}
			n := &node{Space: t.Name.Space, Local: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				n.Attr = append(n.Attr, xml.Attr{Name: xml.Name{Local: a.Name.Local}, Value: a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Kids = append(p.Kids, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("ewstest: empty XML document")
	}
	return root, nil
}

// el builds a types-namespace element with children.
func el(local string, kids ...*node) *node { return &node{Space: nsTypes, Local: local, Kids: kids} }

// mel builds a messages-namespace element with children.
func mel(local string, kids ...*node) *node {
	return &node{Space: nsMessages, Local: local, Kids: kids}
}

// tel builds a types-namespace leaf with text.
func tel(local, text string) *node { return &node{Space: nsTypes, Local: local, Text: text} }

// attr sets an attribute and returns n.
func (n *node) attr(name, value string) *node {
	for i := range n.Attr {
		if n.Attr[i].Name.Local == name {
			n.Attr[i].Value = value
			return n
		}
	}
	n.Attr = append(n.Attr, xml.Attr{Name: xml.Name{Local: name}, Value: value})
	return n
}

// get returns the value of an attribute, or "".
func (n *node) get(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// child returns the first child with this local name, or nil.
func (n *node) child(local string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.Kids {
		if k.Local == local {
			return k
		}
	}
	return nil
}

// path follows child names; nil when one is missing.
func (n *node) path(locals ...string) *node {
	for _, l := range locals {
		n = n.child(l)
	}
	return n
}

// text returns the trimmed text of the child with this local name.
func (n *node) text(local string) string {
	c := n.child(local)
	if c == nil {
		return ""
	}
	return strings.TrimSpace(c.Text)
}

// set replaces (or appends) the child with k's local name.
func (n *node) set(k *node) {
	for i, c := range n.Kids {
		if c.Local == k.Local {
			n.Kids[i] = k
			return
		}
	}
	n.Kids = append(n.Kids, k)
}

// remove drops every child with this local name.
func (n *node) remove(local string) {
	kept := n.Kids[:0]
	for _, c := range n.Kids {
		if c.Local != local {
			kept = append(kept, c)
		}
	}
	n.Kids = kept
}

// clone copies the tree.
func (n *node) clone() *node {
	c := &node{Space: n.Space, Local: n.Local, Text: n.Text}
	c.Attr = append([]xml.Attr(nil), n.Attr...)
	for _, k := range n.Kids {
		c.Kids = append(c.Kids, k.clone())
	}
	return c
}

// prefixes names the namespaces in written documents.
var prefixes = map[string]string{nsSOAP: "s", nsMessages: "m", nsTypes: "t"}

// writeXML serialises n; elements in the three EWS namespaces get their
// usual prefixes (declared once on the root by the caller's envelope).
func writeXML(w *bytes.Buffer, n *node) {
	name := n.Local
	if p, ok := prefixes[n.Space]; ok {
		name = p + ":" + n.Local
	} else if n.Space != "" {
		name = n.Local + ` xmlns="` + n.Space + `"`
	}
	w.WriteString("<" + name)
	for _, a := range n.Attr {
		fmt.Fprintf(w, ` %s="`, a.Name.Local)
		xml.EscapeText(w, []byte(a.Value))
		w.WriteByte('"')
	}
	if len(n.Kids) == 0 && n.Text == "" {
		w.WriteString("/>")
		return
	}
	w.WriteByte('>')
	if len(n.Kids) == 0 {
		xml.EscapeText(w, []byte(n.Text))
	}
	for _, k := range n.Kids {
		writeXML(w, k)
	}
	end := n.Local
	if p, ok := prefixes[n.Space]; ok {
		end = p + ":" + n.Local
	}
	w.WriteString("</" + end + ">")
}

// kids returns n's children; none for a missing element.
func (n *node) kids() []*node {
	if n == nil {
		return nil
	}
	return n.Kids
}

func xmlEscapeTo(w io.Writer, s string) error { return xml.EscapeText(w, []byte(s)) }

func atoiPositive(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err == nil && n < 1 {
		err = fmt.Errorf("ewstest: %d is not positive", n)
	}
	return n, err
}

// dump serialises elements (nil ones skipped) one after another.
func dump(ns ...*node) string {
	var b bytes.Buffer
	for _, n := range ns {
		if n != nil {
			writeXML(&b, n)
		}
	}
	return b.String()
}
