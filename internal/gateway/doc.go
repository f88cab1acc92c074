// Package gateway is the root of the gateway that serves the chat traffic:
// it wires its parts together, serves the routes, identifies every caller
// (the gateway token, then the email header and the allowlist), loads and
// hot-reloads the config and the files it names, and drains.
//
// The parts, in the order a request goes down them:
//
//	translate   dialects, wire types, the SSE reader and writer, the translators, error bodies
//	routing     the one model resolver, attempt plans, the rules for "auto"
//	quota       daily limits: admission, settlement, notifications
//	upstream    providers, transports, failure classes, passive health, the failover loop
//	metering    usage, prices, exact picodollars, the ledger
//	completion  the one completion core both fronts and the stateful chat run
//	chatapi     sessions, turns, privacy routes, export/import, usage, retention, the page
//
// The only input is the config the operator renders (package
// gatewayconfig) and the files it names; each request keeps the snapshot
// of both it started with. Nothing imports this package but cmd/gateway,
// no part imports it back, and none of it imports controller-runtime
// (imports_test.go holds all of that).
package gateway
