// Old code-signing and CA certificates with negative serial numbers (a DER
// encoding mistake of some early CAs) are still embedded in signed programs.
// Go refuses to parse them by default, which would make the whole signature
// unreadable; the scanner reports rather than trusts, so it accepts them.
//
//go:debug x509negativeserial=1

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/certs/authenticode"
	"github.com/spf13/cobra"
)

func newScanCmd(e *env) *cobra.Command {
	return group("scan", "Report the certificates of a secure connection, a certificate file or a signed program", "",
		newScanTLSCmd(e), newScanCertCmd(e), newScanFileCmd(e))
}

func newScanTLSCmd(e *env) *cobra.Command {
	var serverName string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "tls HOST:PORT",
		Short: "Connect, complete a TLS handshake and print the presented chain as JSON",
		Long: `Connects to HOST:PORT and completes a TLS handshake that trusts and rejects
nothing, so that an intercepting or self-signed chain is seen. Prints the
chain the server presented, leaf first, and the verdict of verifying it
against the system roots.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			chain, err := certs.ScanTLS(cmd.Context(), args[0], serverName, timeout)
			if err != nil {
				return err
			}
			return printJSON(e.stdout, chain)
		},
	}
	cmd.Flags().StringVar(&serverName, "servername", "", "server `NAME` to send (SNI) and check; default: the host of HOST:PORT")
	cmd.Flags().DurationVar(&timeout, "timeout", certs.DefaultTimeout, "give up after `D` (connect and handshake)")
	return cmd
}

func newScanCertCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cert FILE",
		Short: "Print the certificates of a PEM bundle or DER file as JSON, leaf first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := certs.ReadFile(args[0])
			if err != nil {
				return err
			}
			parsed, err := certs.ParseBundle(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return printJSON(e.stdout, certs.Build(parsed, certs.Verification{}))
		},
	}
}

func newScanFileCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "file PATH",
		Short: "Print the Authenticode signatures of a Windows program (EXE, DLL, SYS, EFI) as JSON",
		Long: `Prints the Authenticode signatures of a Windows program as JSON. When PATH
is a directory, every program under it is scanned (links are not followed,
other files are counted as not_pe); a program that cannot be read is listed
with its error and the command exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if info, err := os.Stat(args[0]); err == nil && info.IsDir() {
				result, err := authenticode.ScanDir(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if err := printJSON(e.stdout, result); err != nil {
					return err
				}
				if result.Failed() {
					return &findingError{msg: "some files could not be scanned; see their error fields"}
				}
				return nil
			}
			result, err := authenticode.ScanFile(args[0])
			if err != nil {
				return err
			}
			return printJSON(e.stdout, result)
		},
	}
}
