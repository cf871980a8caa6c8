// The view rules of shared/view.ts: what the component shows for a value and Gradio's loading
// status. Pure functions, so every case runs here without a browser; the Chromium tests
// (tests/browser) check that the component renders what these rules decide.
import { describe, expect, it } from "vitest";
import type { PreviewData } from "../shared/types";
import {
	announcement,
	current_view,
	finished,
	is_active,
	frame_shown,
	is_stale,
	keeps_run,
	queue_place,
	queue_text,
	run_offers,
	run_status,
	view_message,
	type Loading
} from "../shared/view";

function value(fields: Partial<PreviewData> = {}): PreviewData {
	return {
		run_id: "run-1",
		status: "running",
		step: 0,
		total_steps: 20,
		preview: null,
		elapsed: 0,
		steps_per_second: null,
		eta: null,
		seeds: [7],
		backend: "toy",
		model: "toy-1",
		width: 64,
		height: 64,
		message: null,
		images: [],
		...fields
	};
}

const loading = (fields: Record<string, unknown>): Loading =>
	({ status: "pending", fn_index: 0, ...fields }) as unknown as Loading;

describe("finished", () => {
	it("is true for no value and for the four end states", () => {
		expect(finished(null)).toBe(true);
		for (const status of ["idle", "done", "cancelled", "error"] as const)
			expect(finished(value({ status }))).toBe(true);
	});
	it("is false while a run is queued or running", () => {
		expect(finished(value({ status: "queued" }))).toBe(false);
		expect(finished(value({ status: "running" }))).toBe(false);
	});
});

describe("run_status", () => {
	const writers = new Set([0]);
	it("passes Gradio's status through", () => {
		expect(run_status(null, null, writers)).toBeNull();
		expect(run_status(value(), loading({ status: "pending" }), writers)).toBe("pending");
		expect(run_status(value(), loading({ status: "complete" }), writers)).toBe("complete");
	});
	it("keeps a running run generating when an event that only reads the component completes", () => {
		const other = loading({ status: "complete", fn_index: 3 });
		expect(run_status(value({ status: "running" }), other, writers)).toBe("generating");
		expect(run_status(value({ status: "queued" }), other, writers)).toBe("generating");
		expect(run_status(value({ status: "done" }), other, writers)).toBe("complete");
	});
});

describe("is_stale", () => {
	it("is a new submission pending while the value shows the previous run", () => {
		expect(is_stale(value({ status: "done" }), "pending")).toBe(true);
		expect(is_stale(null, "pending")).toBe(true);
		expect(is_stale(value({ status: "running" }), "pending")).toBe(false);
		expect(is_stale(value({ status: "done" }), "complete")).toBe(false);
	});
});

describe("current_view", () => {
	it("is idle with no value and nothing pending", () => {
		expect(current_view(null, null, null, false)).toBe("idle");
		expect(current_view(value({ status: "idle" }), null, null, false)).toBe("idle");
	});
	it("is queued with a queue position, else starting, before the first state", () => {
		const queued = loading({ queue_position: 2, queue_size: 3 });
		expect(current_view(null, queued, "pending", false)).toBe("queued");
		expect(current_view(null, loading({}), "pending", false)).toBe("starting");
		expect(current_view(null, loading({}), "generating", false)).toBe("starting");
		expect(current_view(value({ status: "done" }), queued, "pending", false)).toBe("queued");
	});
	it("is starting until a running run paints, then running", () => {
		expect(current_view(value(), null, "generating", false)).toBe("starting");
		expect(current_view(value({ step: 1 }), null, "generating", false)).toBe("running");
		expect(current_view(value({ preview: "data:," }), null, "generating", false)).toBe(
			"running"
		);
		expect(current_view(value({ previews: ["data:,"] }), null, "generating", false)).toBe(
			"running"
		);
	});
	it("is waiting while a running run reports a phase", () => {
		expect(current_view(value({ phase: "loading" }), null, "generating", false)).toBe(
			"waiting"
		);
	});
	it("is cancelled when the run's event ended without a final state", () => {
		expect(current_view(value({ step: 3 }), null, "complete", false)).toBe("cancelled");
		expect(current_view(value({ status: "queued" }), null, "complete", false)).toBe(
			"cancelled"
		);
		expect(current_view(value({ status: "queued" }), null, "generating", false)).toBe(
			"queued"
		);
	});
	it("is cancelled at once when Stop was pressed, unless the run already ended", () => {
		expect(current_view(value({ step: 3 }), null, "generating", true)).toBe("cancelled");
		expect(current_view(null, loading({}), "pending", true)).toBe("cancelled");
		expect(current_view(value({ status: "idle" }), null, null, true)).toBe("cancelled");
		expect(current_view(value({ status: "done" }), null, "complete", true)).toBe("done");
		expect(current_view(value({ status: "error" }), null, "error", true)).toBe("error");
	});
	it("is error when the latest event writing the component raised", () => {
		expect(current_view(value({ step: 2 }), null, "error", false)).toBe("error");
		expect(current_view(value({ status: "done" }), null, "error", false)).toBe("error");
	});
	it("is cancelled when Gradio's page ended an unfinished run's event with no message", () => {
		// gradio 6.31: a `cancels=[...]` whose empty completion reaches the event's loop first
		const silent = loading({ status: "error" });
		expect(current_view(value({ status: "queued" }), silent, "error", false)).toBe("cancelled");
		expect(current_view(value({ step: 4 }), silent, "error", false)).toBe("cancelled");
		// the run's "cancelled" state arrived before the cancel's completion (a busy server)
		const stopped = value({ status: "cancelled", step: 41 });
		expect(current_view(stopped, silent, "error", false)).toBe("cancelled");
		expect(current_view(stopped, silent, "error", true)).toBe("cancelled");
		const raised = loading({ status: "error", message: "CUDA out of memory" });
		expect(current_view(value({ step: 4 }), raised, "error", false)).toBe("error");
		expect(current_view(value({ status: "done" }), silent, "error", false)).toBe("error");
		expect(current_view(null, silent, "error", false)).toBe("error");
	});
	it("is the value's own end state otherwise", () => {
		for (const status of ["done", "cancelled", "error"] as const)
			expect(current_view(value({ status }), null, "complete", false)).toBe(status);
	});
});

describe("is_active", () => {
	it("is true from queued to running, false once ended or idle", () => {
		for (const view of ["queued", "starting", "waiting", "running"] as const)
			expect(is_active(view)).toBe(true);
		for (const view of ["idle", "done", "cancelled", "error"] as const)
			expect(is_active(view)).toBe(false);
	});
});

describe("view_message", () => {
	it("says where the image appears when idle, or the idle value's own message", () => {
		expect(view_message("idle", null, null, false)).toBe(
			"The image appears here as it is generated."
		);
		expect(view_message("idle", value({ message: "Pick a model" }), null, false)).toBe(
			"Pick a model"
		);
	});
	it("shows a starting run's message unless it belongs to the previous run", () => {
		const said = value({ message: "Loading the model" });
		expect(view_message("starting", said, null, false)).toBe("Loading the model");
		expect(view_message("starting", said, null, true)).toBe("Starting…");
		expect(view_message("starting", null, null, false)).toBe("Starting…");
	});
	it("takes an error's message from the failed state, then Gradio's, then a default", () => {
		const failed = value({ status: "error", message: "Out of memory. Fix: fewer steps." });
		expect(view_message("error", failed, null, false)).toBe(
			"Out of memory. Fix: fewer steps."
		);
		const raised = loading({ status: "error", message: "the handler itself failed" });
		expect(view_message("error", value(), raised, false)).toBe("the handler itself failed");
		expect(view_message("error", value(), null, false)).toBe(
			"The run failed; the error notice has the details."
		);
	});
	it("says Cancelled, a done run's note, and nothing while running", () => {
		expect(view_message("cancelled", value(), null, false)).toBe("Cancelled");
		expect(view_message("done", value({ status: "done", message: "early" }), null, false)).toBe(
			"early"
		);
		expect(view_message("done", value({ status: "done" }), null, false)).toBe("");
		expect(view_message("running", value({ message: "x" }), null, false)).toBe("");
	});
});

describe("announcement", () => {
	it("announces progress by quarters, not every step", () => {
		const at = (step: number) => announcement("running", value({ step }), "", "");
		expect(at(0)).toBe("Generating");
		expect(at(4)).toBe("Generating");
		expect(at(5)).toBe("Generating, 25% (step 5 of 20)");
		expect(at(9)).toBe("Generating, 25% (step 5 of 20)");
		expect(at(10)).toBe("Generating, 50% (step 10 of 20)");
		expect(at(20)).toBe("Generating, 100% (step 20 of 20)");
		expect(announcement("running", value({ total_steps: 0 }), "", "")).toBe("Generating");
	});
	it("names the queue, the phase, the images made and the error", () => {
		expect(announcement("queued", null, "", "Position 2 of 3")).toBe("Position 2 of 3");
		expect(announcement("starting", null, "", "")).toBe("Starting");
		expect(announcement("waiting", value({ message: "Loading the model" }), "", "")).toBe(
			"Loading the model"
		);
		expect(announcement("waiting", value(), "", "")).toBe("Waiting");
		const one = value({ status: "done", images: [{ url: "a" } as never] });
		expect(announcement("done", one, "", "")).toBe("Done: 1 image");
		const two = value({ status: "done", images: [{} as never, {} as never] });
		expect(announcement("done", two, "Finished early", "")).toBe(
			"Done: 2 images. Finished early"
		);
		expect(announcement("cancelled", value(), "", "")).toBe("Cancelled");
		expect(announcement("error", value(), "Rate limited", "")).toBe("Error: Rate limited");
		expect(announcement("idle", null, "", "")).toBe("");
	});
});

describe("run_offers", () => {
	const caps = (cancel: boolean, finish_early: boolean) => ({ capabilities: { cancel, finish_early } });
	it("offers Use this preview only while previews run on a backend that can finish early", () => {
		expect(run_offers(value(caps(true, true)), "running", false)).toEqual({ finish: true, stop: true });
		expect(run_offers(value(caps(true, false)), "running", false)).toEqual({ finish: false, stop: true });
		expect(run_offers(value({ status: "queued", ...caps(true, true) }), "queued", false).finish).toBe(false);
	});
	it("offers no Stop while a backend that cannot cancel runs, but a run in line can leave", () => {
		expect(run_offers(value(caps(false, false)), "running", false).stop).toBe(false);
		expect(run_offers(value({ status: "queued", ...caps(false, false) }), "queued", false).stop).toBe(true);
		// a new submission waiting while the previous run (on such a backend) is shown
		expect(run_offers(value({ status: "done", ...caps(false, false) }), "queued", true).stop).toBe(true);
	});
	it("offers both for a value that says nothing of its backend (an app's own state)", () => {
		expect(run_offers(value(), "running", false)).toEqual({ finish: true, stop: true });
	});
});

describe("queue_place and queue_text", () => {
	it("reads the app's fair line from a queued value (1 = next)", () => {
		const place = queue_place(value({ status: "queued", queue_position: 2, queue_size: 3 }), loading({ status: "generating" }), false);
		expect(place).toEqual({ position: 2, size: 3, eta_from: "value" });
		expect(queue_text(place)).toBe("Queued: position 2 of 3");
	});
	it("reads Gradio's queue (0 = next) while the submission waits there", () => {
		const place = queue_place(value({ status: "done" }), loading({ queue_position: 0, queue_size: 2 }), true);
		expect(place).toEqual({ position: 1, size: 2, eta_from: "loading" });
		expect(queue_text(place)).toBe("Queued: position 1 of 2");
	});
	it("says just Queued when the place is not known", () => {
		expect(queue_text(queue_place(null, loading({}), false))).toBe("Queued");
		expect(queue_text({ position: 3, size: null, eta_from: "value" })).toBe("Queued: position 3");
	});
});

describe("frame_shown", () => {
	it("keeps the run's own frame, with its buttons, in every view", () => {
		for (const view of ["running", "done", "cancelled", "error"] as const)
			expect(frame_shown("run-1", "run-1", view, false)).toEqual({ shown: true, own: true });
	});
	it("lets the previous run's frame bridge a starting run, without its buttons", () => {
		expect(frame_shown("run-0", "run-1", "starting", false)).toEqual({ shown: true, own: false });
		expect(frame_shown("run-1", "run-1", "queued", true)).toEqual({ shown: true, own: false });
	});
	it("drops the previous run's frame once the new run is stopped or fails without one", () => {
		expect(frame_shown("run-0", "run-1", "cancelled", false).shown).toBe(false);
		expect(frame_shown("run-0", "run-1", "error", false).shown).toBe(false);
		expect(frame_shown("run-1", "run-1", "cancelled", true).shown).toBe(false);
	});
	it("shows nothing when nothing is painted", () => {
		expect(frame_shown(undefined, "run-1", "running", false).shown).toBe(false);
	});
});

describe("a Stop passed on to the service (cancel_confirms)", () => {
	const generating: Loading = { status: "generating" } as Loading;
	const caps = { cancel: true, finish_early: false, cancel_confirms: true };

	it("says Stopping… until the service answers, and offers no second Stop", () => {
		const running = value({ step: 3, preview: "p", capabilities: caps });
		const view = current_view(running, generating, "generating", false, true);
		expect(view).toBe("stopping");
		expect(is_active(view)).toBe(true);
		expect(view_message(view, running, generating, false)).toBe("Stopping…");
		expect(run_offers(running, view, false).stop).toBe(false);
		expect(current_view(running, generating, "generating", false, false)).toBe("running");
	});

	it("then Cancelled, or the refusal in plain words", () => {
		const stopped = value({ status: "cancelled", cancel_acknowledged: true, message: "Cancelled." });
		expect(current_view(stopped, generating, "complete", false, true)).toBe("cancelled");
		expect(view_message("cancelled", stopped, null, false)).toBe("Cancelled");
		const refused = value({
			status: "cancelled",
			cancel_acknowledged: false,
			message: "Cancel was refused by the service: the job may still run."
		});
		expect(view_message("cancelled", refused, null, false)).toBe(
			"Cancel was refused by the service: the job may still run."
		);
		expect(announcement("cancelled", refused, "", "")).toBe(
			"Cancel was refused by the service: the job may still run."
		);
	});
});

describe("keeps_run", () => {
	const ready = (model: string | null, fields: Partial<PreviewData> = {}) =>
		value({ run_id: null, status: "idle", model, ...fields });

	it("keeps a run of the model a late 'ready for that model' names", () => {
		for (const status of ["queued", "running", "done", "cancelled", "error"] as const)
			expect(keeps_run(value({ status }), ready("toy-1"))).toBe(true);
	});

	it("lets through a value for another model, a note, a run, a clear, or a first value", () => {
		const done = value({ status: "done" });
		expect(keeps_run(done, ready("toy-2"))).toBe(false);
		expect(keeps_run(done, ready("toy-1", { message: "Not available here." }))).toBe(false);
		expect(keeps_run(done, value({ run_id: "run-2", status: "queued" }))).toBe(false);
		expect(keeps_run(done, null)).toBe(false);
		expect(keeps_run(done, ready(null))).toBe(false);
		expect(keeps_run(null, ready("toy-1"))).toBe(false);
		expect(keeps_run(ready("toy-1"), ready("toy-1"))).toBe(false);
	});
});
