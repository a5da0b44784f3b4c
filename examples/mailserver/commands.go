package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one command of the command line: its name (one or two
// words), what it takes and does, and its handler. The help of every
// command is made from these fields, so `CMD -h`, `CMD --help` and
// `help CMD` print the same text.
type command struct {
	name    string // "user add"
	args    string // "ADDRESS [ALIAS...]"
	summary string // one line: what it does
	detail  string // more lines, optional
	flags   string // one flag per line: "-name NAME\tdisplay name"
	example string // one or more command lines, without "mailserver "
	// run is nil for the commands main runs itself (serve, init).
	run func(a *admin, ctx context.Context, args []string) error
}

// commands is the command table, in the order of the global usage.
func commands() []command {
	cmds := []command{
		{name: "serve", summary: "run every listener (the default command); creates the data directory",
			detail:  "Stops on SIGINT or SIGTERM after finishing the sessions in flight.",
			example: "--config /etc/mailyard/mailserver.toml serve"},
		{name: "init", summary: "create the data directory, or check an existing one (every command but serve needs it)",
			example: "--data /var/lib/mailyard init"},
	}
	cmds = append(cmds, domainCommands()...)
	cmds = append(cmds, userCommands()...)
	cmds = append(cmds, aliasGroupCommands()...)
	cmds = append(cmds, resourceCommands()...)
	cmds = append(cmds, shareCommands()...)
	cmds = append(cmds, mailCommands()...)
	cmds = append(cmds, dkimCommands()...)
	cmds = append(cmds, geoCommands()...)
	cmds = append(cmds, searchCommands()...)
	return append(cmds, operationCommands()...)
}

// jsonFlag is the flag of the listing and show commands.
const jsonFlag = "-json\tJSON for scripts instead of the table"

// yesFlag is the flag of every delete command.
const yesFlag = "-yes\tdelete without asking for confirmation"

func domainCommands() []command {
	return []command{
		{name: "domain add", args: "NAME [ALT-NAME...]", summary: "host a mail domain, with alternative names whose mail reaches the same users",
			example: "domain add example.com example.net", run: (*admin).domainAdd},
		{name: "domain list", summary: "the hosted domains with their alternative names", flags: jsonFlag,
			example: "domain list", run: (*admin).domainList},
		{name: "domain show", args: "NAME", summary: "a domain, its alternative names and how many users, aliases and groups it has", flags: jsonFlag,
			example: "domain show example.com", run: (*admin).domainShow},
		{name: "domain delete", args: "NAME", summary: "stop hosting an empty domain (delete its users, aliases and groups first)", flags: yesFlag,
			example: "domain delete example.net --yes", run: (*admin).domainDelete},
	}
}

const passwordFlagsHelp = "-password PW\tthe password on the command line (it lands in your shell history: prefer the prompt or --password-file)\n" +
	"-password-file FILE\tread the password from the first line of FILE"

const passwordDetail = "Without --password or --password-file the password is asked twice, without echo, on a\n" +
	"terminal; otherwise it is the first line of standard input."

func userCommands() []command {
	return []command{
		{name: "user add", args: "ADDRESS", summary: "create a user with a mailbox, in a hosted domain",
			detail: passwordDetail,
			flags: passwordFlagsHelp + "\n-name NAME\tdisplay name\n-quota-bytes N\tmailbox size limit in bytes (0: unlimited)\n" +
				"-quota-messages N\tmailbox message limit (0: unlimited)\n-alias ADDRESS\tanother address of the user (repeatable)",
			example: "user add alice@example.com --name 'Alice Smith'", run: (*admin).userAdd},
		{name: "user list", args: "[DOMAIN]", summary: "the users, of one domain or all", flags: jsonFlag,
			example: "user list example.com", run: (*admin).userList},
		{name: "user show", args: "ADDRESS", summary: "a user: ID, state, names, aliases, quota and its use, protocols", flags: jsonFlag,
			example: "user show alice@example.com", run: (*admin).userShow},
		{name: "user set", args: "ADDRESS", summary: "change a user's display name, quota or protocols (only the flags given)",
			flags: "-name NAME\tdisplay name\n-quota-bytes N\tmailbox size limit in bytes (0: unlimited)\n" +
				"-quota-messages N\tmailbox message limit (0: unlimited)\n-protocols LIST\tcomma-separated from smtp, imap, dav; \"all\" allows every protocol",
			example: "user set alice@example.com --quota-bytes 1073741824 --protocols imap,smtp", run: (*admin).userSet},
		{name: "user alias add", args: "ADDRESS ALIAS...", summary: "give a user more addresses (in domains of its tenant)",
			example: "user alias add alice@example.com a.smith@example.com", run: (*admin).userAliasAdd},
		{name: "user alias remove", args: "ADDRESS ALIAS...", summary: "take addresses from a user",
			example: "user alias remove alice@example.com a.smith@example.com", run: (*admin).userAliasRemove},
		{name: "user passwd", args: "ADDRESS", summary: "set a user's password", detail: passwordDetail, flags: passwordFlagsHelp,
			example: "user passwd alice@example.com", run: (*admin).userPasswd},
		{name: "user disable", args: "ADDRESS", summary: "refuse the user's logins (mail is still delivered)",
			example: "user disable alice@example.com", run: func(a *admin, ctx context.Context, args []string) error { return a.userSetDisabled(ctx, args, true) }},
		{name: "user enable", args: "ADDRESS", summary: "allow a disabled user's logins again",
			example: "user enable alice@example.com", run: func(a *admin, ctx context.Context, args []string) error { return a.userSetDisabled(ctx, args, false) }},
		{name: "user delete", args: "ADDRESS", summary: "delete a user with its mailbox and all its mail", flags: yesFlag,
			example: "user delete alice@example.com", run: (*admin).userDelete},
	}
}

func aliasGroupCommands() []command {
	return []command{
		{name: "alias add", args: "ADDRESS TARGET...", summary: "an address whose mail goes to the targets (local or remote addresses)",
			example: "alias add info@example.com alice@example.com bob@example.com", run: (*admin).aliasAdd},
		{name: "alias list", args: "[DOMAIN]", summary: "the aliases, of one domain or all", flags: jsonFlag,
			example: "alias list example.com", run: (*admin).aliasList},
		{name: "alias show", args: "ADDRESS", summary: "an alias and its targets", flags: jsonFlag,
			example: "alias show info@example.com", run: (*admin).aliasShow},
		{name: "alias target add", args: "ADDRESS TARGET...", summary: "add targets to an alias",
			example: "alias target add info@example.com carol@example.com", run: (*admin).aliasTargetAdd},
		{name: "alias target remove", args: "ADDRESS TARGET...", summary: "remove targets from an alias (not the last: delete the alias instead)",
			example: "alias target remove info@example.com bob@example.com", run: (*admin).aliasTargetRemove},
		{name: "alias delete", args: "ADDRESS", summary: "delete an alias", flags: yesFlag,
			example: "alias delete info@example.com --yes", run: (*admin).aliasDelete},
		{name: "group add", args: "ADDRESS MEMBER...", summary: "a distribution list: mail to ADDRESS reaches every member",
			flags:   "-send-as USER-ADDRESS\ta user who may send as the group (repeatable)",
			example: "group add team@example.com alice@example.com bob@example.com --send-as alice@example.com", run: (*admin).groupAdd},
		{name: "group list", args: "[DOMAIN]", summary: "the groups, of one domain or all", flags: jsonFlag,
			example: "group list example.com", run: (*admin).groupList},
		{name: "group show", args: "ADDRESS", summary: "a group, its members and who may send as it", flags: jsonFlag,
			example: "group show team@example.com", run: (*admin).groupShow},
		{name: "group member add", args: "ADDRESS MEMBER...", summary: "add members to a group (local addresses must exist)",
			example: "group member add team@example.com carol@example.com", run: (*admin).groupMemberAdd},
		{name: "group member remove", args: "ADDRESS MEMBER...", summary: "remove members from a group",
			example: "group member remove team@example.com bob@example.com", run: (*admin).groupMemberRemove},
		{name: "group delete", args: "ADDRESS", summary: "delete a group (its members keep their mail)", flags: yesFlag,
			example: "group delete team@example.com --yes", run: (*admin).groupDelete},
	}
}

func mailCommands() []command {
	return []command{
		{name: "mail list", args: "ADDRESS [MAILBOX]", summary: "the messages of a mailbox (default INBOX): UID, size, date, flags, from, subject", flags: jsonFlag,
			example: "mail list bob@example.com INBOX", run: (*admin).mailList},
		{name: "mail cat", args: "ADDRESS MAILBOX UID", summary: "the raw message on standard output",
			example: "mail cat bob@example.com INBOX 1", run: (*admin).mailCat},
	}
}

func dkimCommands() []command {
	keyFlags := "-alg rsa|ed25519\tkey algorithm (keygen: default rsa; rotate: default that of the key rotated)\n" +
		"-selector S\tselector (default my<YYYYMMDD>, with an e suffix for ed25519)"
	return []command{
		{name: "dkim keygen", args: "DOMAIN", summary: "a new DKIM key; the first of its algorithm signs at once, and its DNS record is printed",
			flags: keyFlags, example: "dkim keygen example.com --alg ed25519", run: (*admin).dkimKeygen},
		{name: "dkim rotate", args: "DOMAIN", summary: "step 1 publishes a new key; step 2 (run again after DNS propagated) switches signing to it",
			flags: keyFlags, example: "dkim rotate example.com", run: (*admin).dkimRotate},
		{name: "dkim list", args: "[DOMAIN]", summary: "the DKIM keys with their state", example: "dkim list example.com", run: (*admin).dkimList},
		{name: "dkim export", args: "DOMAIN SELECTOR", summary: "the private key as PKCS#8 PEM on standard output",
			example: "dkim export example.com my20260101 > key.pem", run: (*admin).dkimExport},
		{name: "dkim import", args: "DOMAIN SELECTOR FILE", summary: "store a PEM private key (published, not signing)",
			example: "dkim import example.com old key.pem", run: (*admin).dkimImport},
		{name: "dns", args: "DOMAIN", summary: "the DNS records the domain must publish",
			flags: "-json\tJSON instead of zone-file text\n-mx HOST\tMX host (default: hostname from the config)\n" +
				"-dmarc-rua ADDRESS\taddress for DMARC aggregate reports\n-dav-port PORT\tport CalDAV/CardDAV clients reach (default 443)",
			example: "dns example.com --dmarc-rua postmaster@example.com", run: (*admin).dnsRecords},
	}
}

func operationCommands() []command {
	queueOp := func(op string) func(a *admin, ctx context.Context, args []string) error {
		return func(a *admin, ctx context.Context, args []string) error { return a.queueOp(op)(ctx, args) }
	}
	quarantineOp := func(op string) func(a *admin, ctx context.Context, args []string) error {
		return func(a *admin, ctx context.Context, args []string) error { return a.quarantineOp(op)(ctx, args) }
	}
	return []command{
		{name: "directory sync", args: "[NAME...]", summary: "sync the [[directory.ldap]] connections now (all without NAME)",
			flags:   "-full\tfull sync (sees deletions)\n-force\toverride the guard on the share of users one sync may remove",
			example: "directory sync --full corp", run: (*admin).directorySync},
		{name: "directory status", args: "[NAME...]", summary: "the last sync of each connection", flags: "-log\tprint the last run's log",
			example: "directory status --log", run: (*admin).directoryStatus},
		{name: "route explain", args: "ADDRESS", summary: "which routing rules apply to ADDRESS, and why",
			flags:   "-from SENDER\tenvelope sender (empty: the null sender)\n-client IP\tSMTP client IP address\n-auth\tthe client authenticated (submission)",
			example: "route explain bob@example.com --client 192.0.2.1", run: (*admin).routeExplain},
		{name: "queue list", summary: "the outbound queue: one line per recipient", example: "queue list", run: (*admin).queueList},
		{name: "queue show", args: "ID", summary: "one queued message: sender, size, and per recipient its transport, attempts, next attempt and last error",
			example: "queue show 01J...", run: (*admin).queueShow},
		{name: "queue hold", args: "ID...", summary: "stop delivery attempts of queued messages", example: "queue hold 01J...", run: queueOp("hold")},
		{name: "queue release", args: "ID...", summary: "resume delivery of held messages", example: "queue release 01J...", run: queueOp("release")},
		{name: "queue retry", args: "ID...", summary: "try delivery now", example: "queue retry 01J...", run: queueOp("retry")},
		{name: "queue delete", args: "ID...", summary: "drop queued messages (no DSN)", example: "queue delete 01J...", run: queueOp("delete")},
		{name: "quarantine list", summary: "messages a milter quarantined: one line each", example: "quarantine list", run: (*admin).quarantineList},
		{name: "quarantine release", args: "ID...", summary: "deliver held messages as they would have been", example: "quarantine release 01J...", run: quarantineOp("release")},
		{name: "quarantine delete", args: "ID...", summary: "drop held messages", example: "quarantine delete 01J...", run: quarantineOp("delete")},
		{name: "store copy", args: "--to DSN", summary: "copy the SQLite data directory into a PostgreSQL database, keeping UIDs (resumable; verified)",
			detail: "Copies records (directory, DKIM keys, shares, migration state), accounts, mailboxes with their UIDVALIDITY,\n" +
				"messages with their UIDs, MODSEQs, flags and internal dates, subscriptions, calendars and address books, and\n" +
				"the outbound queue's recipients. Run it again after an interruption: it continues and never duplicates.\n" +
				"It ends by comparing both stores (exit 1 on a difference). Stop the server first, or run it again after\n" +
				"stopping it to copy what arrived meanwhile. Queue bodies stay in DATA_DIR/queue.",
			flags:   "-to DSN\tthe PostgreSQL database (its schema is created if missing)\n-from DIR\tthe SQLite data directory (default: data_dir)",
			example: "--data /var/lib/mailyard store copy --to postgres://mailyard@db/mailyard", run: (*admin).storeCopy},
		{name: "check", summary: "store integrity check; finishes interrupted deletions (exit 1 on problems)", example: "check", run: (*admin).check},
	}
}

// findCommand returns the command that args start with (the longest
// name wins) and the arguments after its name. Without a match, it
// returns the words it looked at, for the error.
func findCommand(cmds []command, args []string) (command, []string, bool) {
	best, n := command{}, 0
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(words) > n && len(words) <= len(args) && slices.Equal(words, args[:len(words)]) {
			best, n = c, len(words)
		}
	}
	return best, args[n:], n > 0
}

// group returns the commands whose name starts with the given words
// ("user" gives user add, user list, ...).
func group(cmds []command, words []string) []command {
	var out []command
	prefix := strings.Join(words, " ") + " "
	for _, c := range cmds {
		if strings.HasPrefix(c.name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// unknownCommand explains args that name no command: the unknown word,
// and the commands of the group it was in, if any.
func unknownCommand(cmds []command, args []string) error {
	for i := len(args); i > 0; i-- {
		if g := group(cmds, args[:i]); len(g) > 0 {
			if i == len(args) {
				return fmt.Errorf("%s: a subcommand is missing; one of: %s", strings.Join(args[:i], " "), names(g))
			}
			return fmt.Errorf("unknown command %q in %q; one of: %s", args[i], strings.Join(args[:i+1], " "), names(g))
		}
	}
	return fmt.Errorf("unknown command %q (mailserver help lists them)", args[0])
}

func names(cmds []command) string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.name)
	}
	return strings.Join(out, ", ")
}

// isHelp reports whether args ask for help: -h, -help, --help or --h
// anywhere before "--".
func isHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// printHelp writes the usage of one command.
func printHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "usage: mailserver [--config FILE] [--data DIR] %s", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	if c.flags != "" {
		fmt.Fprint(w, " [flags]")
	}
	fmt.Fprintf(w, "\n\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	if c.detail != "" {
		fmt.Fprintf(w, "%s\n", c.detail)
	}
	if c.flags != "" {
		fmt.Fprint(w, "\nflags (--flag and -flag are the same; flags may follow the arguments):\n")
		printFlags(w, c.flags)
	}
	fmt.Fprint(w, "\nglobal flags, also accepted after the command name:\n")
	printFlags(w, globalFlags)
	fmt.Fprintf(w, "\nexample:\n")
	for _, e := range strings.Split(c.example, "\n") {
		fmt.Fprintf(w, "  mailserver %s\n", e)
	}
}

// globalFlags are the flags of every command.
const globalFlags = "--config FILE\tconfiguration file (TOML); default: $MAILYARD_CONFIG, else the built-in defaults\n" +
	"--data DIR\tdata directory (overrides data_dir of the config)\n" +
	"-h, --help\tthis help"

func printFlags(w io.Writer, flags string) {
	for _, l := range strings.Split(flags, "\n") {
		name, text, _ := strings.Cut(l, "\t")
		if !strings.HasPrefix(name, "--") && !strings.Contains(name, ",") {
			name = "-" + name
		}
		fmt.Fprintf(w, "  %-24s %s\n", name, text)
	}
}

// printUsage writes the global usage: every command with its summary.
func printUsage(w io.Writer) {
	fmt.Fprint(w, "usage: mailserver [--config FILE] [--data DIR] COMMAND [ARGS] [FLAGS]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-24s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nglobal flags, also accepted after the command name:\n")
	printFlags(w, globalFlags)
	fmt.Fprint(w, "\n`mailserver help COMMAND` or `mailserver COMMAND -h` shows a command's arguments, flags and an example.\n")
}
