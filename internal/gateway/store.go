package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/chatapi"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// ErrNoMasterKey: the config names no master key, so there is no store
// (the operator always configures one; a bare proxy may run without).
var ErrNoMasterKey = errors.New("keys.masterKeyFile is not set: the session store encrypts with the master key")

// OpenStore opens the store the config at configPath names
// (sessions.store, with the master key from keys.masterKeyFile) and marks
// incomplete the replies a dead process left streaming. The caller closes it.
func OpenStore(ctx context.Context, configPath string, now time.Time) (store.Store, error) {
	cfg, err := gatewayconfig.Load(configPath)
	if err != nil {
		return nil, err
	}
	if cfg.Keys.MasterKeyFile == "" {
		return nil, ErrNoMasterKey
	}
	key, err := store.ReadMasterKey(cfg.Keys.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("keys.masterKeyFile: %w", err)
	}
	st, err := store.Open(ctx, cfg.Sessions.Store, key)
	if err != nil {
		return nil, fmt.Errorf("sessions.store: %w", err)
	}
	if _, err := st.RecoverIncomplete(ctx, chatapi.RecoverCutoff(cfg, now)); err != nil {
		_ = st.Close()
		return nil, err
	}
	return st, nil
}
