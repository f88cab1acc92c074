// Package metering owns what a request costs: the tokens a provider
// reports (Usage), a model's prices, exact integer Picodollars, and the
// spend Ledger with its writer onto the store.
//
// It sits below the gateway's other parts: it imports the config schema
// and the store, and must not import any other package of the gateway.
package metering
