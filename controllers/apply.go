package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// FieldOwner is the one field manager every server-side apply uses.
const FieldOwner = client.FieldOwner("chatgateway-operator")

// typedBody skips the API server's unknown-field check of a request body,
// which by default (Warn) decodes the body a second time, strictly. Every
// body this operator sends is marshalled from Go types of the API it writes
// to, so it has no unknown fields to warn of.
const typedBody = client.FieldValidation(metav1.FieldValidationIgnore)

// applier server-side applies rendered children. It remembers, per object,
// the resourceVersion the last successful apply left, a hash of what was
// sent and the inputs it was rendered from; when the object in the cache
// still has that resourceVersion and the new render hashes the same, the
// request would change nothing and is not sent. Anyone else's write moves
// the resourceVersion, so drift is still corrected. (Cluster API keeps such
// a cache for its server-side applies.) A reconcile whose inputs have not
// changed asks upToDate first and skips the render too.
type applier struct {
	client client.Client
	scheme *runtime.Scheme
	last   *applyCache
}

// apply server-side applies obj, owned by owner (nil for a child that must
// outlive its owner), and records that it was rendered from inputs (a
// fingerprint of what the render read; "" for none). It returns the
// object's metadata as the API server answered, or nil when the request was
// skipped because nothing would change. The request body is the JSON that
// is hashed, and the API server answers with metadata only: the reconcilers
// read a child's status (a Deployment's) from the cache.
func (a *applier) apply(ctx context.Context, owner, obj client.Object, inputs string) (*metav1.PartialObjectMetadata, error) {
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
	m["apiVersion"], m["kind"] = gvk.GroupVersion().String(), gvk.Kind
	raw, err := json.Marshal(m) // encoding/json sorts map keys: equal renders hash equal
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256(raw)
	key := cacheKey(gvk.GroupKind(), obj.GetNamespace(), obj.GetName())

	if version, err := a.currentVersion(ctx, gvk, client.ObjectKeyFromObject(obj)); err != nil {
		return nil, err
	} else if version != "" && a.last.has(key, version, hash) {
		a.last.renderedFrom(key, inputs)
		return nil, nil
	}
	applied := &metav1.PartialObjectMetadata{}
	applied.SetGroupVersionKind(gvk)
	applied.SetNamespace(obj.GetNamespace())
	applied.SetName(obj.GetName())
	if err := a.client.Patch(ctx, applied, client.RawPatch(types.ApplyPatchType, raw), FieldOwner, client.ForceOwnership, typedBody); err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	a.last.add(key, applied.GetResourceVersion(), versionOf(gvk, applied), hash, inputs)
	return applied, nil
}

// upToDate reports whether the child is, in the cache, as our last apply
// left it, and that apply was rendered from the same inputs: the render
// would give the same request, and the request would change nothing.
func (a *applier) upToDate(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey, inputs string) (bool, error) {
	if inputs == "" {
		return false, nil
	}
	ck := cacheKey(gvk.GroupKind(), key.Namespace, key.Name)
	if !a.last.renderedAt(ck, inputs) {
		return false, nil
	}
	version, err := a.currentVersion(ctx, gvk, key)
	if err != nil || version == "" {
		return false, err
	}
	return a.last.sameVersion(ck, version), nil
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

// observedDeployment is the Deployment as the cache has it, for its
// status, after an apply that answered applied (nil when the apply was
// skipped). The cache may not have caught up with the apply yet: then the
// Deployment is taken at the applied generation, whose rollout its
// controller has not reported, and with the replicas just rendered.
func observedDeployment(ctx context.Context, c client.Reader, key client.ObjectKey, applied *metav1.PartialObjectMetadata, replicas *int32) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, key, d); err != nil {
		if !apierrors.IsNotFound(err) || applied == nil {
			return nil, err
		}
		d.Name, d.Namespace = key.Name, key.Namespace
	}
	if applied != nil && applied.Generation > d.Generation {
		d.Generation = applied.Generation
		d.Spec.Replicas = replicas
	}
	return d, nil
}

// recordWrite tells the cache about a write made other than by apply (a
// create, a patch), so that the watch event it causes is known as our own.
func (a *applier) recordWrite(obj client.Object) {
	gvk, err := apiutil.GVKForObject(obj, a.scheme)
	if err != nil {
		return
	}
	a.last.add(cacheKey(gvk.GroupKind(), obj.GetNamespace(), obj.GetName()), obj.GetResourceVersion(), versionOf(gvk, obj), [sha256.Size]byte{}, "")
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
// know its watch event as our own), its versionOf then, the hash of the
// request that made it and the inputs that request was rendered from.
type applyCache struct {
	mu      sync.Mutex
	entries map[string]applyEntry
	now     func() time.Time
	adds    int
}

type applyEntry struct {
	resourceVersion, version, inputs string
	hash                             [sha256.Size]byte
	at                               time.Time
}

func newApplyCache() *applyCache {
	return &applyCache{entries: map[string]applyEntry{}, now: time.Now}
}

func cacheKey(gk schema.GroupKind, ns, name string) string {
	return gk.String() + "/" + ns + "/" + name
}

// fresh is the entry under key, if it is within its TTL. The caller holds mu.
func (c *applyCache) fresh(key string) (applyEntry, bool) {
	e, ok := c.entries[key]
	return e, ok && c.now().Sub(e.at) < applyCacheTTL
}

// has reports whether the request with this hash succeeded against the
// object as it still is.
func (c *applyCache) has(key, version string, hash [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.fresh(key)
	return ok && e.version == version && e.hash == hash && e.hash != [sha256.Size]byte{}
}

// renderedAt reports whether our last apply of the object was rendered from
// these inputs.
func (c *applyCache) renderedAt(key, inputs string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.fresh(key)
	return ok && e.inputs == inputs && e.hash != [sha256.Size]byte{}
}

// sameVersion reports whether the object is still at the version our last
// write left.
func (c *applyCache) sameVersion(key, version string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.fresh(key)
	return ok && e.version == version
}

// renderedFrom records that the object, as our last apply left it, is also
// what these inputs render.
func (c *applyCache) renderedFrom(key, inputs string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.inputs = inputs
		c.entries[key] = e
	}
}

// ownWrite reports whether the object is as our last write left it.
func (c *applyCache) ownWrite(key, resourceVersion string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	return ok && e.resourceVersion == resourceVersion
}

func (c *applyCache) add(key, resourceVersion, version string, hash [sha256.Size]byte, inputs string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.entries[key] = applyEntry{resourceVersion: resourceVersion, version: version, hash: hash, inputs: inputs, at: now}
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
