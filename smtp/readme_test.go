package smtp_test

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEEmbedding: the README's embedding snippet is the code
// Example_embedding compiles and runs, line for line, so it cannot drift
// from what builds.
func TestREADMEEmbedding(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "\n## Embedding\n")
	if i < 0 {
		t.Fatal("README.md has no ## Embedding section")
	}
	start := strings.Index(text[i:], "```go\n")
	if start < 0 {
		t.Fatal("no go code block in README's Embedding section")
	}
	block := text[i+start+len("```go\n"):]
	block = block[:strings.Index(block, "```")]

	src, err := os.ReadFile("embed_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	b := strings.Index(s, "\t// README begin\n")
	e := strings.Index(s, "\t// README end\n")
	if b < 0 || e < b {
		t.Fatal("embed_example_test.go lacks the README markers")
	}
	var example []string
	for _, l := range strings.Split(s[b+len("\t// README begin\n"):e], "\n") {
		example = append(example, strings.TrimPrefix(l, "\t"))
	}
	want := strings.TrimRight(strings.Join(example, "\n"), "\n")
	if got := strings.TrimRight(block, "\n"); got != want {
		t.Errorf("README's embedding snippet differs from Example_embedding; paste this between the fences:\n%s", want)
	}
}
