package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"
)

// maxDefinitionBytes bounds a definition file; real ones are a few KiB.
const maxDefinitionBytes = 1 << 20

func newConnectorCreateCmd(f *clientFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a connector from a definition (YAML or JSON)",
		Long: `Create a connector from its definition, a YAML or JSON document read from
FILE ("-f -" reads standard input). The node checks the definition (name,
type, streams, delivery, error policy, transforms and the type's own config)
and refuses a bad one with a message saying what is wrong; nothing is created
then. A connector starts running as soon as it is created.

A sink definition:

  name: orders-archive
  type: s3-sink
  streams: [orders]
  delivery: exactly-once
  errors:
    on_bad_record: dead-letter
    dead_letter_stream: orders-dlq
  transforms:
    - {drop: [customer.ssn]}
  config:
    bucket: archive

"braid connector types" lists the types this node has.

Examples:
  braid connector create -f orders-archive.yaml
  cat orders-archive.json | braid connector create -f -
  braid connector create -f orders-archive.yaml --format json | jq .state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			def, err := readDefinition(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			var d connectorDescription
			raw, err := f.connectorCall(cmd.Context(), http.MethodPost, "/v1/connectors", definitionContentType(def), def, &d)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawJSON(cmd.OutOrStdout(), raw)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "connector %q created (%s, state %s)\n", d.Name, dashIfEmpty(d.Type), dashIfEmpty(d.State))
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `the definition file, YAML or JSON; "-" reads standard input (required)`)
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readDefinition reads the definition from file, or from stdin for "-".
func readDefinition(stdin io.Reader, file string) ([]byte, error) {
	var rd io.Reader
	name := file
	switch file {
	case "":
		return nil, fmt.Errorf(`no definition: give -f FILE, or -f - to read standard input`)
	case "-":
		rd, name = stdin, "standard input"
	default:
		fh, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read definition: %w", err)
		}
		defer fh.Close()
		rd = fh
	}
	b, err := io.ReadAll(io.LimitReader(rd, maxDefinitionBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read definition from %s: %w", name, err)
	}
	if len(b) > maxDefinitionBytes {
		return nil, fmt.Errorf("definition in %s is larger than %d bytes", name, maxDefinitionBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("definition in %s is empty", name)
	}
	return b, nil
}

// definitionContentType says JSON for a document that is valid JSON, YAML
// otherwise: "{name: x}" opens like JSON but only YAML reads it.
func definitionContentType(def []byte) string {
	if json.Valid(def) {
		return "application/json"
	}
	return "application/yaml"
}
