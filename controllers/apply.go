package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// FieldOwner is the one field manager every server-side apply uses.
const FieldOwner = client.FieldOwner("chatgateway-operator")

// applier server-side applies rendered children. It remembers, per object,
// the resourceVersion the last successful apply left and a hash of what was
// sent; when the object in the cache still has that resourceVersion and the
// new render hashes the same, the request would change nothing and is not
// sent. Anyone else's write moves the resourceVersion, so drift is still
// corrected. (Cluster API keeps such a cache for its server-side applies.)
type applier struct {
	client client.Client
	scheme *runtime.Scheme
	last   *applyCache
}

// apply server-side applies obj, owned by owner (nil for a child that must
// outlive its owner). It returns the object as the API server answered, or
// nil when the request was skipped because nothing would change.
func (a *applier) apply(ctx context.Context, owner, obj client.Object) (*unstructured.Unstructured, error) {
	if owner != nil {
		if err := controllerutil.SetControllerReference(owner, obj, a.scheme); err != nil {
			return nil, fmt.Errorf("setting owner of %s: %w", obj.GetName(), err)
		}
	}
	gvk, err := apiutil.GVKForObject(obj, a.scheme)
	if err != nil {
		return nil, err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s: %w", obj.GetName(), err)
	}
	// The renderers own spec and data only; status and the zero timestamps
	// of typed objects must not be claimed by the apply.
	delete(m, "status")
	pruneNulls(m)
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	raw, err := json.Marshal(m) // encoding/json sorts map keys: equal renders hash equal
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	key := cacheKey(gvk.GroupKind(), obj.GetNamespace(), obj.GetName())

	if version, err := a.currentVersion(ctx, gvk, client.ObjectKeyFromObject(obj)); err != nil {
		return nil, err
	} else if version != "" && a.last.has(key, version, hash) {
		return nil, nil
	}
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), FieldOwner, client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	a.last.add(key, u.GetResourceVersion(), versionOf(gvk, u), hash)
	return u, nil
}

var deploymentGVK = appsv1.SchemeGroupVersion.WithKind("Deployment")

// versionOf is what must not have moved since our last apply for the next
// identical one to be skipped: the resourceVersion, but for a Deployment its
// generation, which only its spec moves: its controller writes its status at
// every step of a rollout, and that takes nothing from what we applied.
func versionOf(gvk schema.GroupVersionKind, obj client.Object) string {
	if gvk == deploymentGVK {
		return "generation/" + strconv.FormatInt(obj.GetGeneration(), 10)
	}
	return obj.GetResourceVersion()
}

// currentVersion reads versionOf the object from the manager's cache: a
// metadata-only informer, but for Deployments, whose status the reconcilers
// read and which are cached whole. "" when it does not exist.
func (a *applier) currentVersion(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (string, error) {
	var obj client.Object
	if gvk == deploymentGVK {
		obj = &appsv1.Deployment{}
	} else {
		pom := &metav1.PartialObjectMetadata{}
		pom.SetGroupVersionKind(gvk)
		obj = pom
	}
	if err := a.client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading %s %s from the cache: %w", gvk.Kind, key.Name, err)
	}
	return versionOf(gvk, obj), nil
}

// recordWrite tells the cache about a write made other than by apply (a
// create, a patch), so that the watch event it causes is known as our own.
func (a *applier) recordWrite(obj client.Object) {
	gvk, err := apiutil.GVKForObject(obj, a.scheme)
	if err != nil {
		return
	}
	a.last.add(cacheKey(gvk.GroupKind(), obj.GetNamespace(), obj.GetName()), obj.GetResourceVersion(), versionOf(gvk, obj), "")
}

// pruneNulls drops null values (zero metav1.Time, nil pointers serialised by
// the converter) and the empty maps they leave behind.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(t)
			if len(t) == 0 {
				delete(m, k)
			}
		case []any:
			for _, item := range t {
				if im, ok := item.(map[string]any); ok {
					pruneNulls(im)
				}
			}
		}
	}
}

// deleteIfExists removes a child that the spec no longer asks for.
func deleteIfExists(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// applyCacheTTL bounds how long an entry is trusted, and so the memory held
// for children that are gone: after it, one apply goes out again (a no-op on
// the API server) and renews the entry.
const applyCacheTTL = 10 * time.Minute

// applyCache maps a child to the resourceVersion our last write left (to
// know its watch event as our own), its versionOf then, and the hash of the
// request that made it.
type applyCache struct {
	mu      sync.Mutex
	entries map[string]applyEntry
	now     func() time.Time
	adds    int
}

type applyEntry struct {
	resourceVersion, version, hash string
	at                             time.Time
}

func newApplyCache() *applyCache {
	return &applyCache{entries: map[string]applyEntry{}, now: time.Now}
}

func cacheKey(gk schema.GroupKind, ns, name string) string {
	return gk.String() + "/" + ns + "/" + name
}

// has reports whether the request with this hash succeeded against the
// object as it still is.
func (c *applyCache) has(key, version, hash string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return ok && e.version == version && e.hash == hash && c.now().Sub(e.at) < applyCacheTTL
}

// ownWrite reports whether the object is as our last write left it.
func (c *applyCache) ownWrite(key, resourceVersion string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return ok && e.resourceVersion == resourceVersion
}

func (c *applyCache) add(key, resourceVersion, version, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.entries[key] = applyEntry{resourceVersion: resourceVersion, version: version, hash: hash, at: now}
	if c.adds++; c.adds%1024 == 0 {
		for k, e := range c.entries {
			if now.Sub(e.at) >= applyCacheTTL {
				delete(c.entries, k)
			}
		}
	}
}

func (c *applyCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}
