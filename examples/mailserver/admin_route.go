package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"

	"github.com/mailyard/mailyard/routing"
)

// routeExplain prints how the server would route mail for an address,
// with the [routing] section of the config and the directory in the data
// directory: every rule consulted and the resulting decisions.
//
//	route explain ADDRESS [-from SENDER] [-client IP] [-auth]
func (a *admin) routeExplain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("route explain", flag.ContinueOnError)
	from := fs.String("from", "", "envelope sender (empty: the null sender)")
	client := fs.String("client", "", "SMTP client IP address, for relaynets and the central hop")
	auth := fs.Bool("auth", false, "the client authenticated (submission)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	env := routing.Envelope{From: *from, Authenticated: *auth}
	if *client != "" {
		if env.ClientIP, err = netip.ParseAddr(*client); err != nil {
			return fmt.Errorf("-client %q: %w", *client, err)
		}
	}
	rules, err := a.cfg.Routing.routingRules()
	if err != nil {
		return err
	}
	table := routing.NewTable(a.dir, routing.TableOptions{Logger: a.logger, Rules: rules, Sites: a.routeSites()})
	out, err := table.Explain(ctx, env, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprint(a.stdout, out)
	return nil
}
