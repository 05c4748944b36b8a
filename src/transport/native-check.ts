import uWS from 'uWebSockets.js';
import { NativeTransportMissingError } from '../errors.js';

export type TransportImplementation = 'native' | 'fallback';

/**
 * The uWebSockets.js build we use loads a pure-JS server (on top of `ws`) when its native binary does not
 * fit this Node.js, printing only a warning. That server is much slower and behaves differently under
 * backpressure, so voxgate refuses it unless the operator allowed it explicitly.
 */
export function detectTransport(): TransportImplementation {
  return Function.prototype.toString.call(uWS.App).includes('[native code]') ? 'native' : 'fallback';
}

export function assertNativeTransport(allowFallback: boolean): TransportImplementation {
  const implementation = detectTransport();
  if (implementation === 'fallback' && !allowFallback) {
    throw new NativeTransportMissingError(
      `uWebSockets.js could not load its native binary for Node ${process.version} (ABI ${process.versions.modules}, ` +
        `${process.platform}-${process.arch}) and fell back to its slow pure-JS server. Use Node 20, or set ` +
        'ALLOW_FALLBACK_TRANSPORT=true to run on the fallback anyway.',
    );
  }
  return implementation;
}
