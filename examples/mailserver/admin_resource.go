package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// errNotResource is returned for an address that is no resource.
var errNotResource = errors.New("not a resource")

// resourceCommands are the commands for rooms and equipment.
func resourceCommands() []command {
	return []command{
		{name: "resource add", args: "ADDRESS", summary: "a bookable room or equipment with its own calendar",
			flags: "-name NAME\tdisplay name\n-kind room|equipment\twhat it is (default room)\n-capacity N\tnumber of seats (rooms)\n" +
				"-location L\twhere it is\n-policy auto|manual\tauto accepts when free; manual leaves it to the approvers\n" +
				"-approver USER-ADDRESS\ta user who answers bookings (repeatable; manual policy)",
			example: "resource add room1@example.com --name 'Room 1' --capacity 8", run: (*admin).resourceAdd},
		{name: "resource list", args: "[DOMAIN]", summary: "one line each: address kind capacity policy approvers name",
			example: "resource list example.com", run: (*admin).resourceList},
		{name: "resource policy", args: "ADDRESS auto|manual", summary: "change a resource's booking policy",
			flags:   "-approver USER-ADDRESS\ta user who answers bookings (repeatable; manual policy)",
			example: "resource policy room1@example.com manual --approver alice@example.com", run: (*admin).resourcePolicy},
	}
}

// resourceAdd: resource add ADDRESS [-name N] [-kind room|equipment]
// [-capacity N] [-location L] [-policy auto|manual] [-approver USER]...
func (a *admin) resourceAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("resource add", flag.ContinueOnError)
	name := fs.String("name", "", "display name")
	kind := fs.String("kind", directory.ResourceRoom, "room or equipment")
	capacity := fs.Int("capacity", 0, "number of seats (rooms)")
	location := fs.String("location", "", "where it is")
	policy := fs.String("policy", directory.ResourcePolicyAuto, "auto or manual")
	var approvers multiFlag
	fs.Var(&approvers, "approver", "address of a user who answers bookings (repeatable; manual policy)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 1 {
		return errUsage
	}
	ids, err := a.approverIDs(ctx, approvers)
	if err != nil {
		return err
	}
	r, err := a.dir.CreateResource(ctx, directory.Resource{Address: pos[0], DisplayName: *name, Kind: *kind,
		Capacity: *capacity, Location: *location, Policy: *policy, Approvers: ids})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "resource %s added (%s, policy %s)\n", r.Address, r.Kind, policyName(r.Policy))
	return nil
}

// resourceList: resource list [DOMAIN], one line per resource: address,
// kind, capacity, policy, approvers, display name.
func (a *admin) resourceList(ctx context.Context, args []string) error {
	if len(args) > 1 {
		return errUsage
	}
	domain := ""
	if len(args) == 1 {
		domain = args[0]
	}
	after := ""
	for {
		page, err := a.dir.ListResources(ctx, domain, after, 500)
		if err != nil {
			return err
		}
		for _, r := range page {
			if err := a.printResource(ctx, r); err != nil {
				return err
			}
		}
		if len(page) < 500 {
			return nil
		}
		after = page[len(page)-1].Address
	}
}

func (a *admin) printResource(ctx context.Context, r directory.Resource) error {
	approvers := make([]string, 0, len(r.Approvers))
	for _, id := range r.Approvers {
		u, err := a.dir.User(ctx, id)
		if errors.Is(err, directory.ErrNotFound) {
			approvers = append(approvers, "(deleted user "+id+")")
			continue
		}
		if err != nil {
			return err
		}
		approvers = append(approvers, u.Address)
	}
	line := fmt.Sprintf("%s\t%s\tcapacity %d\tpolicy %s", r.Address, r.Kind, r.Capacity, policyName(r.Policy))
	if len(approvers) > 0 {
		line += "\tapprovers " + strings.Join(approvers, ",")
	}
	if r.DisplayName != "" {
		line += "\t" + r.DisplayName
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}

// resourcePolicy: resource policy ADDRESS auto|manual [-approver USER]...
func (a *admin) resourcePolicy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("resource policy", flag.ContinueOnError)
	var approvers multiFlag
	fs.Var(&approvers, "approver", "address of a user who answers bookings (repeatable; manual policy)")
	pos, err := parseFlags(fs, args)
	if err != nil || len(pos) != 2 {
		return errUsage
	}
	e, err := a.dir.LookupAddress(ctx, pos[0])
	if err != nil {
		return err
	}
	if e.Resource == nil {
		return fmt.Errorf("%s: %w", pos[0], errNotResource)
	}
	ids, err := a.approverIDs(ctx, approvers)
	if err != nil {
		return err
	}
	r, err := a.dir.SetResourcePolicy(ctx, e.Resource.ID, pos[1], ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "resource %s: policy %s\n", r.Address, policyName(r.Policy))
	return nil
}

// approverIDs resolves approver addresses to user IDs.
func (a *admin) approverIDs(ctx context.Context, addrs []string) ([]string, error) {
	var ids []string
	for _, addr := range addrs {
		u, err := a.lookupUser(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("approver %s: %w", addr, err)
		}
		ids = append(ids, u.ID)
	}
	return ids, nil
}

// policyName shows the empty policy as the auto policy it means.
func policyName(p string) string {
	if p == "" {
		return directory.ResourcePolicyAuto
	}
	return p
}
