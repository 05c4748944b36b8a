import type { HttpResponse } from 'uWebSockets.js';

/**
 * Where one uWS HttpResponse stands. uWS forbids touching a response after it was aborted or ended (and
 * kills the process if a handler returns without answering and without onAborted), so every write goes
 * through `respond()`, which answers at most once, and the edge guard reads the phase to know whether an
 * exception still needs an answer.
 */
export type ResponsePhase = 'open' | 'writing' | 'done' | 'aborted';

// uWS lets an application attach its own properties to an HttpResponse; this symbol keeps ours private.
const kPhase = Symbol('voxgate.responsePhase');

interface TrackedResponse extends HttpResponse {
  [kPhase]?: ResponsePhase;
}

/** Called once, first thing in every HTTP and upgrade callback. */
export function trackResponse(res: HttpResponse): void {
  const tracked = res as TrackedResponse;
  tracked[kPhase] = 'open';
  tracked.onAborted(() => {
    tracked[kPhase] = 'aborted';
  });
}

export function responsePhase(res: HttpResponse): ResponsePhase {
  return (res as TrackedResponse)[kPhase] ?? 'open';
}

/**
 * Runs `write` (which must end the response or upgrade it) inside a cork, unless the response was already
 * answered or aborted. Returns false when nothing was written.
 */
export function respond(res: HttpResponse, write: () => void): boolean {
  const tracked = res as TrackedResponse;
  if ((tracked[kPhase] ?? 'open') !== 'open') return false;
  // 'writing' until `write` returns: if it throws half-way, the guard must not start a second answer.
  tracked[kPhase] = 'writing';
  tracked.cork(write);
  tracked[kPhase] = 'done';
  return true;
}

/** A complete JSON response. */
export function respondJson(res: HttpResponse, status: string, headers: ReadonlyArray<readonly [string, string]>, body: unknown): boolean {
  return respond(res, () => {
    res.writeStatus(status);
    res.writeHeader('Content-Type', 'application/json; charset=utf-8');
    res.writeHeader('Cache-Control', 'no-store');
    for (const [name, value] of headers) res.writeHeader(name, value);
    res.end(JSON.stringify(body));
  });
}
