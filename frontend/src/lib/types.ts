// The types of the app/ services are generated from the Go code into api.gen.ts (`make tsgen`,
// tools/tsgen; JSON keys are the Go field names, see docs/contracts.md). This module re-exports
// them and adds the frontend's own types.

export type * from './api.gen';
import type { Event, LogQuery, RunRequest } from './api.gen';

/** EngineEvent is app.Event under a name that does not hide the DOM's Event. */
export type EngineEvent = Event;

export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | string;

/** RunInput is a RunRequest with only what the caller sets; the rest is sent as Go's zero value. */
export type RunInput = Partial<RunRequest> & Pick<RunRequest, 'Image'>;

/** LogQueryInput is a LogQuery with only what the caller sets (Timestamps defaults to true). */
export type LogQueryInput = Partial<LogQuery>;
