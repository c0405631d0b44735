package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/log"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// maxPodTerminationMessages is the kubelet's limit on the termination
// messages of all containers of a pod together (kubecontainer.MaxPodTerminationMessageLogLength).
const maxPodTerminationMessages = 12 * 1024

// kubeletConditions are the pod conditions the kubelet owns; all others
// (PodScheduled, DisruptionTarget, readiness gates) are kept from the API
// object when the status is written.
var kubeletConditions = []corev1.PodConditionType{
	corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady,
}

// snapshot is the pod as the provider sees it (spec as received, status as computed).
func (r *podRun) snapshot() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &corev1.Pod{ObjectMeta: *r.meta.DeepCopy(), Spec: *r.spec.DeepCopy(), Status: *r.renderLocked()}
}

// publishLocked computes the status, hands it to the writer and wakes log
// followers. r.mu must be held.
func (r *podRun) publishLocked() {
	r.pending = r.renderLocked()
	r.version++
	close(r.changed)
	r.changed = make(chan struct{})
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// containerStatusLocked is c's status as the kubelet reports it.
func (r *podRun) containerStatusLocked(c *ctr) corev1.ContainerStatus {
	started := c.running && c.started
	ready := false
	switch c.kind {
	case kindInit:
		ready = c.state.Terminated != nil && c.state.Terminated.ExitCode == 0
	default:
		ready = started && (c.spec.ReadinessProbe == nil || c.probeReady)
	}
	cs := corev1.ContainerStatus{
		Name: c.spec.Name, Image: c.spec.Image, ImageID: c.imageID, ContainerID: c.containerID,
		State: *c.state.DeepCopy(), LastTerminationState: *c.last.DeepCopy(),
		Ready: ready, RestartCount: c.restarts, Started: &started,
	}
	if c.state.Waiting != nil {
		cs.ContainerID = "" // no container exists while waiting
		if c.last.Terminated != nil {
			cs.ContainerID = c.last.Terminated.ContainerID
		}
	}
	return cs
}

// renderLocked computes the pod status from the containers' states, with the
// kubelet's rules (pkg/kubelet/kubelet_pods.go getPhase, pkg/kubelet/status/generate.go).
func (r *podRun) renderLocked() *corev1.PodStatus {
	ip := r.p.hostIP
	st := &corev1.PodStatus{
		HostIP: ip, HostIPs: []corev1.HostIP{{IP: ip}}, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		StartTime: r.startTime.DeepCopy(), ObservedGeneration: r.meta.Generation,
	}
	for _, c := range r.ctrs {
		cs := r.containerStatusLocked(c)
		if c.kind == kindRegular {
			st.ContainerStatuses = append(st.ContainerStatuses, cs)
		} else {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		}
	}
	if n := len(r.ctrs); n > 0 {
		trimMessages(st.InitContainerStatuses, maxPodTerminationMessages/n)
		trimMessages(st.ContainerStatuses, maxPodTerminationMessages/n)
	}

	regularActive := false
	for _, c := range r.ctrs {
		if c.kind == kindRegular && c.running {
			regularActive = true
		}
	}
	phase := getPhase(&r.spec, st.InitContainerStatuses, st.ContainerStatuses, r.terminal, regularActive)
	switch {
	case r.terminal && r.stopReason != "":
		phase = corev1.PodFailed
		st.Reason, st.Message = r.stopReason, r.stopMessage
	case r.terminal && phase != corev1.PodSucceeded && phase != corev1.PodFailed:
		phase = corev1.PodFailed // TerminatePod: a pod that stops is terminal
	case !r.terminal && (phase == corev1.PodSucceeded || phase == corev1.PodFailed):
		// The phase turns terminal only once every container (sidecars
		// included) has stopped, i.e. in finish.
		phase = corev1.PodRunning
	}
	st.Phase = phase

	var conds []corev1.PodCondition
	ready := corev1.ConditionTrue
	if r.terminal {
		ready = corev1.ConditionFalse
	}
	conds = append(conds, r.cond(corev1.PodReadyToStartContainers, ready, "", ""))
	conds = append(conds, r.initializedCond(st, phase))
	cr := r.containersReadyCond(st, phase)
	pr := cr
	pr.Type = corev1.PodReady
	conds = append(conds, r.cond(corev1.PodReady, pr.Status, pr.Reason, pr.Message))
	conds = append(conds, r.cond(corev1.ContainersReady, cr.Status, cr.Reason, cr.Message))
	st.Conditions = conds
	return st
}

// cond returns a condition, keeping its last transition time while its status is unchanged.
func (r *podRun) cond(t corev1.PodConditionType, s corev1.ConditionStatus, reason, msg string) corev1.PodCondition {
	c := corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: r.meta.Generation}
	if old, ok := r.conds[t]; ok && old.Status == s {
		c.LastTransitionTime = old.LastTransitionTime
	} else {
		c.LastTransitionTime = now()
	}
	r.conds[t] = c
	return c
}

func (r *podRun) initializedCond(st *corev1.PodStatus, phase corev1.PodPhase) corev1.PodCondition {
	if phase == corev1.PodSucceeded {
		return r.cond(corev1.PodInitialized, corev1.ConditionTrue, "PodCompleted", "")
	}
	for _, cs := range st.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return r.cond(corev1.PodInitialized, corev1.ConditionTrue, "", "")
		}
	}
	var incomplete []string
	for i, c := range r.spec.InitContainers {
		cs := st.InitContainerStatuses[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			if cs.Started == nil || !*cs.Started {
				incomplete = append(incomplete, c.Name)
			}
		} else if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, c.Name)
		}
	}
	if len(incomplete) > 0 {
		return r.cond(corev1.PodInitialized, corev1.ConditionFalse, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: %v", incomplete))
	}
	return r.cond(corev1.PodInitialized, corev1.ConditionTrue, "", "")
}

// containersReadyCond is the ContainersReady condition (not yet recorded in r.conds).
func (r *podRun) containersReadyCond(st *corev1.PodStatus, phase corev1.PodPhase) corev1.PodCondition {
	switch phase {
	case corev1.PodSucceeded:
		return corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "PodCompleted"}
	case corev1.PodFailed:
		return corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "PodFailed"}
	}
	var unready []string
	for i, c := range r.spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways && !st.InitContainerStatuses[i].Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	if len(unready) > 0 {
		return corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "ContainersNotReady",
			Message: fmt.Sprintf("containers with unready status: %v", unready)}
	}
	return corev1.PodCondition{Status: corev1.ConditionTrue}
}

func trimMessages(list []corev1.ContainerStatus, limit int) {
	for i := range list {
		for _, s := range []*corev1.ContainerState{&list[i].State, &list[i].LastTerminationState} {
			if s.Terminated != nil && len(s.Terminated.Message) > limit {
				s.Terminated.Message = s.Terminated.Message[:limit]
			}
		}
	}
}

// getPhase is the kubelet's getPhase (pkg/kubelet/kubelet_pods.go) without
// container-level restart rules.
func getPhase(spec *corev1.PodSpec, initStatuses, statuses []corev1.ContainerStatus, podIsTerminal, podHasInitialized bool) corev1.PodPhase {
	pendingRestartableInit, pendingRegularInit, failedInit := 0, 0, 0
	for i, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			continue
		}
		cs := initStatuses[i]
		switch {
		case cs.State.Running != nil:
			pendingRegularInit++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				if cs.LastTerminationState.Terminated.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingRegularInit++
			}
		default:
			pendingRegularInit++
		}
	}
	unknown, running, waitingN, stopped, succeeded := 0, 0, 0, 0, 0
	for i, c := range spec.InitContainers {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			continue
		}
		cs := initStatuses[i]
		switch {
		case cs.State.Running != nil:
			if cs.Started == nil || !*cs.Started {
				pendingRestartableInit++
			}
			running++
		case cs.State.Terminated != nil:
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated == nil {
				pendingRestartableInit++
				waitingN++
			}
		default:
			pendingRestartableInit++
			unknown++
		}
	}
	for _, cs := range statuses {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waitingN++
			}
		default:
			unknown++
		}
	}
	if failedInit > 0 && spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingRegularInit > 0 || (pendingRestartableInit > 0 && !podHasInitialized):
		return corev1.PodPending
	case waitingN > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if podIsTerminal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		if spec.RestartPolicy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if spec.RestartPolicy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	default:
		return corev1.PodPending
	}
}

// ---------------------------------------------------------------------------
// writer

// writer writes the latest published status to the API server, one at a
// time and in order, coalescing bursts (only the latest status matters).
func (r *podRun) writer() {
	for {
		select {
		case <-r.kick:
		case <-r.writerStop:
			return
		}
		r.mu.Lock()
		st, v := r.pending, r.version
		r.pending = nil
		r.mu.Unlock()
		if st != nil {
			r.write(st)
		}
		r.mu.Lock()
		r.written = v
		close(r.writtenCh)
		r.writtenCh = make(chan struct{})
		r.mu.Unlock()
	}
}

// flush waits (at most timeout) until the latest published status is written.
func (r *podRun) flush(timeout time.Duration) {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok, ch := r.written >= r.version, r.writtenCh
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			return
		}
	}
}

func (r *podRun) closeWriter() { r.writerOnce.Do(func() { close(r.writerStop) }) }

// write merges st into the API object's status and writes it, retrying on
// conflicts. A status that is already terminal on the server is never
// changed, as the kubelet never moves a pod out of a terminal phase.
func (r *podRun) write(st *corev1.PodStatus) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods := r.p.client.CoreV1().Pods(r.meta.Namespace)
	for attempt := 0; ; attempt++ {
		pod, err := pods.Get(ctx, r.meta.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if err == nil {
			if pod.UID != r.uid || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				return
			}
			pod.Status = mergeStatus(pod, st)
			_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			if err == nil || apierrors.IsNotFound(err) {
				return
			}
			if apierrors.IsConflict(err) {
				continue
			}
		}
		if ctx.Err() != nil {
			log.L.Warnf("nodeagent: giving up writing the status of %s: %v", r.key(), err)
			return
		}
		time.Sleep(time.Duration(min(attempt+1, 10)) * 100 * time.Millisecond)
	}
}

// mergeStatus returns the API object's status with the fields the kubelet
// owns replaced by ours; Ready also honours the pod's readiness gates, as
// they stand on the server now.
func mergeStatus(pod *corev1.Pod, ours *corev1.PodStatus) corev1.PodStatus {
	out := *pod.Status.DeepCopy()
	o := ours.DeepCopy()
	out.Phase, out.Reason, out.Message = o.Phase, o.Reason, o.Message
	out.HostIP, out.HostIPs, out.PodIP, out.PodIPs = o.HostIP, o.HostIPs, o.PodIP, o.PodIPs
	out.StartTime, out.ObservedGeneration = o.StartTime, o.ObservedGeneration
	out.InitContainerStatuses, out.ContainerStatuses = o.InitContainerStatuses, o.ContainerStatuses

	owned := func(t corev1.PodConditionType) bool {
		for _, k := range kubeletConditions {
			if k == t {
				return true
			}
		}
		return false
	}
	var conds []corev1.PodCondition
	for _, c := range out.Conditions {
		if !owned(c.Type) {
			conds = append(conds, c)
		}
	}
	for _, c := range o.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			if msg := readinessGatesMessage(pod); msg != "" {
				c.Status, c.Reason, c.Message = corev1.ConditionFalse, "ReadinessGatesNotReady", msg
			}
		}
		conds = append(conds, c)
	}
	out.Conditions = conds
	return out
}

func readinessGatesMessage(pod *corev1.Pod) string {
	var msgs []string
	for _, g := range pod.Spec.ReadinessGates {
		found := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType {
				found = true
				if c.Status != corev1.ConditionTrue {
					msgs = append(msgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, c.Status))
				}
			}
		}
		if !found {
			msgs = append(msgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		}
	}
	return strings.Join(msgs, ", ")
}
