// Command bench-operator is the operator's scale run: a local control plane
// (envtest's kube-apiserver and etcd, with an audit log), the manager as its
// own process, N ChatGateways over N/per-ns namespaces, and a table of what
// it cost. Run it with `make bench-operator` (BENCH_FLAGS="-n 100" for a
// smaller run), or against another manager binary with -manager.
//
// envtest runs no Deployment controller and no kubelet; this program plays
// them as its own API user: once a Deployment's current generation is
// created, it writes the status the Deployment controller reports when
// every replica is updated and available.
//
// Write requests are counted exactly, per API user, from the API server's
// audit log (every create, update, patch and delete); server-side applies
// from its apiserver_request_total{verb="APPLY"}.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"
)

var (
	gvrGateway   = schema.GroupVersionResource{Group: "chatgateway.dev", Version: "v1alpha1", Resource: "chatgateways"}
	gvrProvider  = schema.GroupVersionResource{Group: "chatgateway.dev", Version: "v1alpha1", Resource: "modelproviders"}
	gvrAllowlist = schema.GroupVersionResource{Group: "chatgateway.dev", Version: "v1alpha1", Resource: "userallowlists"}
	gvrFor       = map[string]schema.GroupVersionResource{"ChatGateway": gvrGateway, "ModelProvider": gvrProvider, "UserAllowlist": gvrAllowlist}
)

// The API users, so the audit log says who wrote what.
const (
	userManager    = "chatgateway-manager"
	userDeployment = "bench-deployment-controller"
	userBench      = "bench"
)

type options struct {
	n, perNS, workers        int
	manager, managerArgs     string
	managerEnv               string
	assets, project, out     string
	logPath, profiles        string
	profileSeconds           int
	settle, window, deadline time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 500, "ChatGateways to create")
	flag.IntVar(&o.perNS, "per-ns", 50, "ChatGateways per namespace (each namespace gets the samples' Secrets, ModelProviders and UserAllowlist)")
	flag.IntVar(&o.workers, "workers", 16, "concurrent creates")
	flag.StringVar(&o.manager, "manager", "", "manager binary to measure (default: build ./cmd/manager of -project)")
	flag.StringVar(&o.managerArgs, "manager-args", "", "extra flags for the manager, space-separated")
	flag.StringVar(&o.managerEnv, "manager-env", "", "extra environment for the manager, space-separated NAME=value (GODEBUG=gctrace=1)")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder with kube-apiserver and etcd")
	flag.StringVar(&o.project, "project", ".", "the operator's checkout: CRDs, samples, cmd/manager")
	flag.StringVar(&o.out, "out", "", "also write the table to this file")
	flag.StringVar(&o.logPath, "manager-log", "", "keep the manager's log in this file")
	flag.StringVar(&o.profiles, "profile-dir", "", "write to this folder CPU profiles of kube-apiserver and the manager taken from the first create (for -profile-seconds), and the manager's heap profile after the steady window")
	flag.IntVar(&o.profileSeconds, "profile-seconds", 30, "length of the CPU profiles")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "after the last Ready, how long until the steady state is declared")
	flag.DurationVar(&o.window, "window", time.Minute, "the steady window in which applies are counted")
	flag.DurationVar(&o.deadline, "timeout", 5*time.Minute, "bound on each wait")
	flag.Parse()
	if o.assets == "" {
		fmt.Fprintln(os.Stderr, "bench-operator: -assets or KUBEBUILDER_ASSETS is required (make bench-operator sets it)")
		os.Exit(2)
	}
	ctrllog.SetLogger(logr.Discard())
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-operator:", err)
		os.Exit(1)
	}
}

type bench struct {
	o         options
	dyn       dynamic.Interface
	kube      *kubernetes.Clientset
	cfg       *rest.Config
	auditPath string
	samples   []*unstructured.Unstructured
	rows      [][2]string
	ready     *stamps // ChatGateway key → first Ready
}

func (b *bench) add(what, value string) {
	b.rows = append(b.rows, [2]string{what, value})
	logf("%s: %s", what, value)
}

func run(o options) error {
	b := &bench{o: o, ready: newStamps()}
	tmp, err := os.MkdirTemp("", "bench-operator-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if b.samples, err = loadSamples(filepath.Join(o.project, "config", "samples")); err != nil {
		return err
	}
	if o.manager == "" {
		o.manager = filepath.Join(tmp, "manager")
		logf("building the manager")
		cmd := exec.Command("go", "build", "-o", o.manager, "./cmd/manager")
		cmd.Dir, cmd.Env = o.project, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building the manager: %w\n%s", err, out)
		}
		b.o.manager = o.manager
	}

	// The control plane, with an audit log of every write.
	b.auditPath = filepath.Join(tmp, "audit.log")
	policy := filepath.Join(tmp, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(o.project, "config", "crd", "bases"), filepath.Join(o.project, "test", "crds", "monitoring")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: o.assets,
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("service-cluster-ip-range", "10.96.0.0/16") // a /24 holds too few Services
	args.Set("audit-policy-file", policy)
	args.Set("audit-log-path", b.auditPath)
	args.Set("audit-log-format", "json")
	// Batched, so the log costs the API server little on the request path;
	// flushed within a second, before the counts are read.
	args.Set("audit-log-mode", "batch")
	args.Set("audit-log-batch-max-wait", "1s")
	logf("starting kube-apiserver and etcd")
	if b.cfg, err = env.Start(); err != nil {
		_ = env.Stop()
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()
	benchCfg, err := userConfig(env, userBench)
	if err != nil {
		return err
	}
	if b.dyn, err = dynamic.NewForConfig(benchCfg); err != nil {
		return err
	}
	if b.kube, err = kubernetes.NewForConfig(benchCfg); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.playDeploymentController(ctx, env); err != nil {
		return err
	}
	b.watchReady(ctx)

	user, err := env.AddUser(envtest.User{Name: userManager, Groups: []string{"system:masters"}}, b.cfg)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kcPath := filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		return err
	}
	logPath := o.logPath
	if logPath == "" {
		logPath = filepath.Join(tmp, "manager.log")
	}
	extra := strings.Fields(o.managerArgs)
	pprofURL := ""
	if o.profiles != "" {
		if err := os.MkdirAll(o.profiles, 0o755); err != nil {
			return err
		}
		addr := "127.0.0.1:" + freePort()
		extra = append(extra, "--pprof-bind-address="+addr)
		pprofURL = "http://" + addr + "/debug/pprof/"
	}
	mgr, err := startManager(o.manager, kcPath, extra, strings.Fields(o.managerEnv), logPath)
	if err != nil {
		return err
	}
	defer mgr.stop()
	mgr.pprofURL = pprofURL
	t := time.Now()
	if err := poll(ctx, o.deadline, "the manager's /readyz", func() bool { return httpOK(mgr.readyURL) }); err != nil {
		return fmt.Errorf("%w (manager log:\n%s)", err, tail(mgr.logPath))
	}
	b.add("manager start → /readyz 200", dur(time.Since(t)))
	b.memory(mgr, "at /readyz, before any object")

	err = b.measure(ctx, mgr)
	b.print()
	if err != nil {
		return fmt.Errorf("%w (manager log tail:\n%s)", err, tail(mgr.logPath))
	}
	return nil
}

func (b *bench) measure(ctx context.Context, mgr *managerProc) error {
	o := b.o
	nsCount := (o.n + o.perNS - 1) / o.perNS
	namespaces := make([]string, nsCount)
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("bench-%03d", i)
	}
	logf("creating %d namespaces with the samples' Secrets, ModelProviders and UserAllowlist", nsCount)
	var mpKeys []string
	for _, ns := range namespaces {
		if err := b.prepareNamespace(ctx, ns); err != nil {
			return err
		}
		for _, s := range b.samples {
			if s.GetKind() == "ModelProvider" {
				mpKeys = append(mpKeys, ns+"/"+s.GetName())
			}
		}
	}
	if err := poll(ctx, o.deadline, "the ModelProviders Ready", func() bool { return b.allReady(ctx, gvrProvider, mpKeys) }); err != nil {
		return err
	}

	gw := b.sample("ChatGateway")
	keys := make([]string, o.n)
	applies0, err := b.applyCount(ctx)
	if err != nil {
		return err
	}
	logf("creating %d ChatGateways", o.n)
	if o.profiles != "" {
		go b.profileAPIServer(ctx, filepath.Join(o.profiles, "kube-apiserver.cpu.pprof"))
		go mgr.profile(fmt.Sprintf("profile?seconds=%d", o.profileSeconds), filepath.Join(o.profiles, "manager.cpu.pprof"))
	}
	cpuBefore := b.cpuByProcess(mgr)
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.workers)
	for range o.workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < o.n; i = int(next.Add(1) - 1) {
				u := gw.DeepCopy()
				u.SetNamespace(namespaces[i/o.perNS])
				u.SetName(fmt.Sprintf("gw-%04d", i))
				keys[i] = u.GetNamespace() + "/" + u.GetName()
				if _, err := b.dyn.Resource(gvrGateway).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("creating ChatGateways: %w", err)
	}
	if err := poll(ctx, o.deadline, fmt.Sprintf("%d ChatGateways Ready", o.n), func() bool { return b.ready.has(keys) }); err != nil {
		return err
	}
	allReady := b.ready.latest(keys)
	cpuAfter := b.cpuByProcess(mgr)
	b.add(fmt.Sprintf("first create → all %d ChatGateways Ready", o.n), dur(allReady.Sub(t0)))
	b.add("CPU seconds in that span: kube-apiserver / etcd / manager / this harness", fmt.Sprintf("%.1f / %.1f / %.1f / %.1f (%d CPUs)",
		cpuAfter[0]-cpuBefore[0], cpuAfter[1]-cpuBefore[1], cpuAfter[2]-cpuBefore[2], cpuAfter[3]-cpuBefore[3], runtime.NumCPU()))
	b.memory(mgr, "after all Ready")
	b.reconciles(mgr, "create → all Ready")

	time.Sleep(time.Until(allReady.Add(o.settle)))
	t1 := time.Now()
	applies1, err := b.applyCount(ctx)
	if err != nil {
		return err
	}
	w, err := b.writes(t0, t1)
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("write requests per ChatGateway, first create → steady (all Ready + %s); audit log, by API user", o.settle),
		fmt.Sprintf("manager %.2f; all users %.2f (%s)", float64(w.byUser[userManager])/float64(o.n), float64(w.total)/float64(o.n), w.summary(o.n)))
	b.add("manager's writes in that span, by verb and resource", w.detail(userManager))
	b.add("server-side apply requests in that span", fmt.Sprint(applies1-applies0))

	logf("steady window: %s", o.window)
	cpu0 := cpuSeconds(mgr.pid())
	time.Sleep(o.window)
	t2 := time.Now()
	applies2, err := b.applyCount(ctx)
	if err != nil {
		return err
	}
	w2, err := b.writes(t1, t2)
	if err != nil {
		return err
	}
	b.add(fmt.Sprintf("steady %s: apply requests / all write requests by the manager", o.window),
		fmt.Sprintf("%d / %d", applies2-applies1, w2.byUser[userManager]))
	b.add(fmt.Sprintf("steady %s: manager CPU", o.window), fmt.Sprintf("%.2f s", cpuSeconds(mgr.pid())-cpu0))
	b.memory(mgr, "after the steady window")
	if o.profiles != "" {
		mgr.profile("heap", filepath.Join(o.profiles, "manager.heap.pprof"))
	}

	return b.propagate(ctx, namespaces[0], keys[:min(o.perNS, o.n)])
}

// propagate adds an email to one namespace's UserAllowlist and times it into
// every child of that namespace's gateways that carries the allowlist: the
// OAuth2 Proxy emails file, gateway.yaml, and the Deployment's config hash.
func (b *bench) propagate(ctx context.Context, ns string, gateways []string) error {
	email := fmt.Sprintf("bench-%d@example.com", time.Now().UnixNano())
	hashes := map[string]string{}
	for _, k := range gateways {
		name := strings.TrimPrefix(k, ns+"/") + "-gateway"
		d, err := b.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		hashes[name] = d.Spec.Template.Annotations["chatgateway.dev/config-hash"]
	}
	emails, configs, rolled := newStamps(), newStamps(), newStamps()
	f := informers.NewSharedInformerFactoryWithOptions(b.kube, 0, informers.WithNamespace(ns))
	_, _ = f.Core().V1().ConfigMaps().Informer().AddEventHandler(onChange(func(obj any) {
		cm := obj.(*corev1.ConfigMap)
		switch {
		case strings.HasSuffix(cm.Name, "-gateway-oauth2-proxy") && strings.Contains(cm.Data["authenticated-emails"], email):
			emails.mark(cm.Name)
		case strings.HasSuffix(cm.Name, "-gateway-config") && strings.Contains(cm.Data["gateway.yaml"], email):
			configs.mark(cm.Name)
		}
	}))
	_, _ = f.Apps().V1().Deployments().Informer().AddEventHandler(onChange(func(obj any) {
		d := obj.(*appsv1.Deployment)
		if h, ok := hashes[d.Name]; ok && d.Spec.Template.Annotations["chatgateway.dev/config-hash"] != h {
			rolled.mark(d.Name)
		}
	}))
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f.Start(wctx.Done())
	f.WaitForCacheSync(wctx.Done())

	name := b.sample("UserAllowlist").GetName()
	patch := fmt.Sprintf(`[{"op":"add","path":"/spec/users/-","value":{"email":%q,"role":"User"}}]`, email)
	t0 := time.Now()
	if _, err := b.dyn.Resource(gvrAllowlist).Namespace(ns).Patch(ctx, name, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("editing the UserAllowlist: %w", err)
	}
	n := len(gateways)
	if err := poll(ctx, b.o.deadline, "the edit in every child", func() bool {
		return emails.count() == n && configs.count() == n && rolled.count() == n
	}); err != nil {
		return fmt.Errorf("%w (emails %d, gateway.yaml %d, Deployments %d of %d)", err, emails.count(), configs.count(), rolled.count(), n)
	}
	last := slices.MaxFunc([]time.Time{emails.max(), configs.max(), rolled.max()}, func(a, b time.Time) int { return a.Compare(b) })
	b.add(fmt.Sprintf("one UserAllowlist edit → its %d gateways' children (emails file / gateway.yaml / Deployment hash; all)", n),
		fmt.Sprintf("%s / %s / %s; %s", dur(emails.max().Sub(t0)), dur(configs.max().Sub(t0)), dur(rolled.max().Sub(t0)), dur(last.Sub(t0))))
	return nil
}

// profileAPIServer saves a CPU profile of kube-apiserver (its /debug/pprof).
func (b *bench) profileAPIServer(ctx context.Context, path string) {
	raw, err := b.kube.RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", strconv.Itoa(b.o.profileSeconds)).DoRaw(ctx)
	if err != nil {
		logf("profiling kube-apiserver: %v", err)
		return
	}
	_ = os.WriteFile(path, raw, 0o644)
}

func onChange(f func(any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, n any) { f(n) }}
}

// --- the Deployment controller, played ---

// playDeploymentController writes, as its own API user, the status the
// Deployment controller reports once a Deployment's current generation is
// rolled out and available.
func (b *bench) playDeploymentController(ctx context.Context, env *envtest.Environment) error {
	cfg, err := userConfig(env, userDeployment)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	f := informers.NewSharedInformerFactory(kube, 0)
	inf := f.Apps().V1().Deployments().Informer()
	queue := make(chan string, 4096)
	var pending sync.Map
	enqueue := func(obj any) {
		d := obj.(*appsv1.Deployment)
		if rolledOut(d) {
			return
		}
		key := d.Namespace + "/" + d.Name
		if _, dup := pending.LoadOrStore(key, true); !dup {
			queue <- key
		}
	}
	if _, err := inf.AddEventHandler(onChange(enqueue)); err != nil {
		return err
	}
	for range 4 {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case key := <-queue:
					pending.Delete(key)
					obj, ok, _ := inf.GetStore().GetByKey(key)
					if !ok {
						continue
					}
					d := obj.(*appsv1.Deployment).DeepCopy()
					if rolledOut(d) {
						continue
					}
					n := replicas(d)
					now := metav1.Now()
					d.Status = appsv1.DeploymentStatus{
						ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
						Conditions: []appsv1.DeploymentCondition{
							{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
							{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: now, LastTransitionTime: now},
						},
					}
					if _, err := kube.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
						// A conflict means a newer version is on its way through the informer.
						time.Sleep(50 * time.Millisecond)
					}
				}
			}
		}()
	}
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	return nil
}

func replicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rolledOut(d *appsv1.Deployment) bool {
	n := replicas(d)
	return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == n && d.Status.AvailableReplicas == n
}

// --- readiness ---

// watchReady stamps each ChatGateway's first Ready for its generation:
// status.observedGeneration and the Ready condition's equal to
// metadata.generation, Ready True.
func (b *bench) watchReady(ctx context.Context) {
	f := dynamicinformer.NewDynamicSharedInformerFactory(b.dyn, 0)
	_, _ = f.ForResource(gvrGateway).Informer().AddEventHandler(onChange(func(obj any) {
		u := obj.(*unstructured.Unstructured)
		if isReady(u) {
			b.ready.mark(u.GetNamespace() + "/" + u.GetName())
		}
	}))
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
}

func isReady(u *unstructured.Unstructured) bool {
	gen := u.GetGeneration()
	if og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); og != gen {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" {
			og, _ := m["observedGeneration"].(int64)
			return m["status"] == "True" && og == gen
		}
	}
	return false
}

func (b *bench) allReady(ctx context.Context, gvr schema.GroupVersionResource, keys []string) bool {
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		u, err := b.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || !isReady(u) {
			return false
		}
	}
	return true
}

// --- counting ---

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
`

type writeCount struct {
	total  int
	byUser map[string]int
	byKey  map[string]map[string]int // user → "verb resource[/sub]" → n
}

// writes counts the audit log's write requests received in [from, to).
func (b *bench) writes(from, to time.Time) (writeCount, error) {
	w := writeCount{byUser: map[string]int{}, byKey: map[string]map[string]int{}}
	f, err := os.Open(b.auditPath)
	if err != nil {
		return w, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			var ev struct {
				Stage     string                                 `json:"stage"`
				Verb      string                                 `json:"verb"`
				User      struct{ Username string }              `json:"user"`
				ObjectRef struct{ Resource, Subresource string } `json:"objectRef"`
				Received  time.Time                              `json:"requestReceivedTimestamp"`
			}
			if json.Unmarshal(line, &ev) == nil && ev.Stage == "ResponseComplete" && !ev.Received.Before(from) && ev.Received.Before(to) {
				w.total++
				w.byUser[ev.User.Username]++
				k := ev.Verb + " " + ev.ObjectRef.Resource
				if ev.ObjectRef.Subresource != "" {
					k += "/" + ev.ObjectRef.Subresource
				}
				if w.byKey[ev.User.Username] == nil {
					w.byKey[ev.User.Username] = map[string]int{}
				}
				w.byKey[ev.User.Username][k]++
			}
		}
		if err == io.EOF {
			return w, nil
		}
		if err != nil {
			return w, err
		}
	}
}

func (w writeCount) summary(n int) string {
	var parts []string
	for _, u := range sortedKeys(w.byUser) {
		parts = append(parts, fmt.Sprintf("%s %.2f", u, float64(w.byUser[u])/float64(n)))
	}
	return strings.Join(parts, ", ")
}

func (w writeCount) detail(user string) string {
	var parts []string
	for _, k := range sortedKeys(w.byKey[user]) {
		parts = append(parts, fmt.Sprintf("%s %d", k, w.byKey[user][k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return keys
}

var applyRE = regexp.MustCompile(`(?m)^apiserver_request_total\{[^}]*verb="APPLY"[^}]*\} (\S+)`)

// applyCount is the API server's count of server-side apply requests.
func (b *bench) applyCount(ctx context.Context) (int, error) {
	raw, err := b.kube.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	n := 0.0
	for _, m := range applyRE.FindAllStringSubmatch(string(raw), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		n += v
	}
	return int(n), nil
}

var (
	reconcileTotalRE = regexp.MustCompile(`(?m)^controller_runtime_reconcile_total\{controller="([^"]+)",result="([^"]+)"\} (\S+)`)
	reconcileTimeRE  = regexp.MustCompile(`(?m)^controller_runtime_reconcile_time_seconds_(sum|count)\{controller="([^"]+)"\} (\S+)`)
)

// reconciles reports the manager's reconciles so far and their mean duration.
func (b *bench) reconciles(mgr *managerProc, when string) {
	resp, err := http.Get(mgr.metrics)
	if err != nil {
		return
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	counts := map[string]float64{}
	for _, m := range reconcileTotalRE.FindAllStringSubmatch(string(raw), -1) {
		v, _ := strconv.ParseFloat(m[3], 64)
		if v > 0 {
			counts[m[1]+" "+m[2]] += v
		}
	}
	sums := map[string][2]float64{}
	for _, m := range reconcileTimeRE.FindAllStringSubmatch(string(raw), -1) {
		v, _ := strconv.ParseFloat(m[3], 64)
		s := sums[m[2]]
		if m[1] == "sum" {
			s[0] = v
		} else {
			s[1] = v
		}
		sums[m[2]] = s
	}
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
	}
	for c, s := range sums {
		if s[1] > 0 {
			parts = append(parts, fmt.Sprintf("%s mean %s", c, dur(time.Duration(s[0]/s[1]*float64(time.Second)))))
		}
	}
	slices.Sort(parts)
	b.add("manager's reconciles since start, "+when, strings.Join(parts, ", "))
}

// memory reports the manager's resident memory, split into anonymous
// memory (the Go heap, stacks, runtime) and file-backed pages (the binary's
// code and read-only data, which the kernel maps in as it is touched), and
// the Go heap in use as the runtime reports it.
func (b *bench) memory(mgr *managerProc, when string) {
	st := procStatus(mgr.pid())
	heap := ""
	if resp, err := http.Get(mgr.metrics); err == nil {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := heapInuseRE.FindStringSubmatch(string(raw)); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			heap = fmt.Sprintf("; Go heap in use %.1f MiB", v/(1<<20))
		}
	}
	b.add("manager memory "+when+": RSS (peak)", fmt.Sprintf("%.1f MiB (%.1f MiB); anonymous %.1f MiB, file-backed %.1f MiB%s",
		mib(st["VmRSS"]), mib(st["VmHWM"]), mib(st["RssAnon"]), mib(st["RssFile"]), heap))
}

var heapInuseRE = regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes (\S+)`)

func mib(kib int64) float64 { return float64(kib) / 1024 }

// --- objects ---

func loadSamples(dir string) ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct{ Resources []string }
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func (b *bench) sample(kind string) *unstructured.Unstructured {
	for _, s := range b.samples {
		if s.GetKind() == kind {
			return s
		}
	}
	panic("no " + kind + " in config/samples")
}

// prepareNamespace creates a namespace with the Secrets the samples name
// (placeholder values) and the samples but the ChatGateway.
func (b *bench) prepareNamespace(ctx context.Context, ns string) error {
	if _, err := b.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for name, data := range map[string]map[string]string{
		"anthropic-api-key":  {"api-key": "bench-placeholder"},
		"litellm-master-key": {"api-key": "bench-placeholder"},
		"oauth2-proxy":       {"client-secret": "bench-placeholder", "cookie-secret": "0123456789abcdef0123456789abcdef"},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
		if _, err := b.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for _, s := range b.samples {
		if s.GetKind() == "ChatGateway" {
			continue
		}
		u := s.DeepCopy()
		u.SetNamespace(ns)
		if _, err := b.dyn.Resource(gvrFor[u.GetKind()]).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

func userConfig(env *envtest.Environment, name string) (*rest.Config, error) {
	u, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, env.Config)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(u.Config())
	cfg.QPS, cfg.Burst = -1, -1 // no client-side throttling: the bench must not be the bottleneck
	return cfg, nil
}

// --- the manager process ---

type managerProc struct {
	cmd                                  *exec.Cmd
	done                                 chan struct{}
	readyURL, metrics, logPath, pprofURL string
}

// profile saves one of the manager's pprof profiles ("heap", "profile?seconds=30").
func (m *managerProc) profile(what, path string) {
	resp, err := http.Get(m.pprofURL + what)
	if err != nil {
		logf("profiling the manager: %v", err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(path, raw, 0o644)
}

func startManager(bin, kubeconfig string, extra, env []string, logPath string) (*managerProc, error) {
	metricsPort, probePort := freePort(), freePort()
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--metrics-bind-address=127.0.0.1:" + metricsPort, "--metrics-secure=false",
		"--health-probe-bind-address=127.0.0.1:" + probePort, "--leader-elect=false"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "KUBECONFIG="+kubeconfig), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	m := &managerProc{cmd: cmd, done: make(chan struct{}), logPath: logPath,
		readyURL: "http://127.0.0.1:" + probePort + "/readyz", metrics: "http://127.0.0.1:" + metricsPort + "/metrics"}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(m.done)
	}()
	return m, nil
}

func (m *managerProc) pid() int { return m.cmd.Process.Pid }

func (m *managerProc) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// procStatus reads the KiB figures of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, RssFile), by name without the colon.
func procStatus(pid int) map[string]int64 {
	out := map[string]int64{}
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			out[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	return out
}

// cpuByProcess is the CPU seconds so far of kube-apiserver, etcd (this
// program's children), the manager and this program: on a small machine they
// share the CPUs, and the sum says whether the run was bound by them.
func (b *bench) cpuByProcess(mgr *managerProc) [4]float64 {
	var out [4]float64
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(raw)
		comm := s[strings.IndexByte(s, '(')+1 : strings.LastIndexByte(s, ')')]
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(self) {
			continue
		}
		switch comm {
		case "kube-apiserver":
			out[0] += cpuSeconds(pid)
		case "etcd":
			out[1] += cpuSeconds(pid)
		}
	}
	out[2], out[3] = cpuSeconds(mgr.pid()), cpuSeconds(self)
	return out
}

// cpuSeconds is utime+stime from /proc/PID/stat (USER_HZ 100).
func cpuSeconds(pid int) float64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

func tail(path string) string {
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// --- helpers ---

type stamps struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newStamps() *stamps { return &stamps{m: map[string]time.Time{}} }

func (s *stamps) mark(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; !ok {
		s.m[key] = time.Now()
	}
}

func (s *stamps) has(keys []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if _, ok := s.m[k]; !ok {
			return false
		}
	}
	return true
}

func (s *stamps) latest(keys []string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, k := range keys {
		if s.m[k].After(t) {
			t = s.m[k]
		}
	}
	return t
}

func (s *stamps) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *stamps) max() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, v := range s.m {
		if v.After(t) {
			t = v
		}
	}
	return t
}

func poll(ctx context.Context, timeout time.Duration, what string, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not done after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (b *bench) print() {
	var s strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&s, "\nbench-operator: %d ChatGateways over %d namespaces; manager %s %s %s; %s; load average %s\n\n",
		b.o.n, (b.o.n+b.o.perNS-1)/b.o.perNS, b.o.manager, b.o.managerArgs, b.o.managerEnv, time.Now().UTC().Format(time.RFC3339),
		strings.Join(strings.Fields(string(load))[:3], " "))
	s.WriteString("| measure | value |\n| --- | --- |\n")
	for _, r := range b.rows {
		fmt.Fprintf(&s, "| %s | %s |\n", r[0], r[1])
	}
	fmt.Print(s.String())
	if b.o.out != "" {
		_ = os.WriteFile(b.o.out, []byte(s.String()), 0o644)
	}
}

func dur(d time.Duration) string { return d.Round(time.Millisecond).String() }

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}
