// Small pure helpers for the text the component shows.
import type { FileData } from "@gradio/client";

export function format_rate(steps_per_second: number | null): string | null {
	if (steps_per_second == null || !isFinite(steps_per_second)) return null;
	if (steps_per_second <= 0) return null;
	if (steps_per_second >= 1) return `${steps_per_second.toFixed(1)} it/s`;
	return `${(1 / steps_per_second).toFixed(1)} s/it`;
}

export function format_seconds(seconds: number): string {
	const s = Math.max(0, Math.ceil(seconds));
	if (s < 60) return `${s}s`;
	const m = Math.floor(s / 60);
	if (m < 60) return `${m}m ${s % 60}s`;
	return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function format_eta(eta: number | null): string | null {
	if (eta == null || !isFinite(eta) || eta < 0) return null;
	return `~${format_seconds(eta)} left`;
}

export function format_elapsed(elapsed: number): string {
	return elapsed < 10 ? `${elapsed.toFixed(1)}s` : format_seconds(elapsed);
}

// Columns of the final-image grid: the `columns` prop, else one per image up to 4.
export function grid_columns(columns: number | null, count: number): number {
	if (columns != null && columns > 0) return Math.floor(columns);
	return Math.max(1, Math.min(count, 4));
}

// The file name a final image downloads as.
export function download_name(file: FileData, index: number): string {
	return file.orig_name || `image-${index + 1}.png`;
}
