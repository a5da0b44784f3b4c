package main

import (
	"fmt"

	"github.com/mailyard/mailyard/routing"
)

// RoutingConfig is the [routing] section: what routing.Config holds, in
// TOML. Without the section, hosted domains deliver locally, unknown
// recipients are rejected and only authenticated clients may relay.
type RoutingConfig struct {
	// Relaynets are client networks (CIDR or addresses) that may relay
	// without SMTP AUTH.
	Relaynets        []string                `toml:"relaynets"`
	RelayDomains     []RelayDomainConfig     `toml:"relay_domain"`
	Routes           []RouteConfig           `toml:"route"`
	Unknown          []UnknownConfig         `toml:"unknown"`
	TechnicalDomains []TechnicalDomainConfig `toml:"technical_domain"`
	Forwards         []ForwardConfig         `toml:"forward"`
	AlwaysBCC        []BCCConfig             `toml:"always_bcc"`
	// CentralHop receives all inbound mail for hosted domains first.
	CentralHop *GatewayConfig `toml:"central_hop"`
}

// GatewayConfig is a relay target: next hop syntax as in routing.NextHop,
// TLS policy (none, opportunistic, required, verify) and optional AUTH.
type GatewayConfig struct {
	NextHop      string            `toml:"next_hop"`
	TLS          routing.TLSPolicy `toml:"tls"`
	AuthUsername string            `toml:"auth_username"`
	AuthPassword string            `toml:"auth_password"`
}

// RelayDomainConfig is one [[routing.relay_domain]].
type RelayDomainConfig struct {
	Domain string `toml:"domain"`
	GatewayConfig
}

// RouteConfig is one [[routing.route]].
type RouteConfig struct {
	Match string `toml:"match"`
	GatewayConfig
}

// UnknownConfig is one [[routing.unknown]]: the unknown-recipient policy
// of a domain, or the default without domain.
type UnknownConfig struct {
	Domain   string                `toml:"domain"`
	Action   routing.UnknownAction `toml:"action"`
	CatchAll string                `toml:"catch_all"`
	GatewayConfig
}

// TechnicalDomainConfig is one [[routing.technical_domain]].
type TechnicalDomainConfig struct {
	Name   string `toml:"name"`
	Domain string `toml:"domain"`
}

// ForwardConfig is one [[routing.forward]].
type ForwardConfig struct {
	Address  string   `toml:"address"`
	Targets  []string `toml:"targets"`
	KeepCopy bool     `toml:"keep_copy"`
}

// BCCConfig is one [[routing.always_bcc]].
type BCCConfig struct {
	Address   string            `toml:"address"`
	Domain    string            `toml:"domain"`
	Direction routing.Direction `toml:"direction"`
}

func (g GatewayConfig) gateway() routing.Gateway {
	gw := routing.Gateway{NextHop: g.NextHop, TLS: g.TLS}
	if g.AuthUsername != "" || g.AuthPassword != "" {
		gw.Auth = &routing.Credentials{Username: g.AuthUsername, Password: g.AuthPassword}
	}
	return gw
}

// routingRules compiles the [routing] section; nil gives the rules of an
// empty routing.Config.
func (r *RoutingConfig) routingRules() (*routing.Rules, error) {
	var cfg routing.Config
	if r != nil {
		cfg.Relaynets = r.Relaynets
		for _, d := range r.RelayDomains {
			cfg.RelayDomains = append(cfg.RelayDomains, routing.RelayDomain{Domain: d.Domain, Gateway: d.gateway()})
		}
		for _, rt := range r.Routes {
			cfg.Routes = append(cfg.Routes, routing.Route{Match: rt.Match, Gateway: rt.gateway()})
		}
		for _, u := range r.Unknown {
			cfg.Unknown = append(cfg.Unknown, routing.UnknownPolicy{Domain: u.Domain, Action: u.Action, CatchAll: u.CatchAll, Gateway: u.gateway()})
		}
		for _, td := range r.TechnicalDomains {
			cfg.TechnicalDomains = append(cfg.TechnicalDomains, routing.TechnicalDomain(td))
		}
		for _, f := range r.Forwards {
			cfg.Forwards = append(cfg.Forwards, routing.Forward(f))
		}
		for _, b := range r.AlwaysBCC {
			cfg.AlwaysBCC = append(cfg.AlwaysBCC, routing.BCC(b))
		}
		if r.CentralHop != nil {
			gw := r.CentralHop.gateway()
			cfg.CentralHop = &gw
		}
	}
	rules, err := routing.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("section \"routing\": %w", err)
	}
	return rules, nil
}
