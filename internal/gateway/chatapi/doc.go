// Package chatapi serves the stateful chat the web page uses: sessions and
// their turns, the privacy opt-ins (admin access, export, community
// sharing, each audited), export and import, the usage pages, retention,
// and the mount of the page itself.
//
// It depends on a completion interface it defines (Completer, which the
// completion core satisfies) and on the store, and is handed the gateway's
// identity check; it imports the completion core's types, quota's status
// type, routing (the model resolver and windows), translate (the
// Conversation a turn builds) and the config schema, and must not import
// the gateway's root.
package chatapi
