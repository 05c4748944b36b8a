import { z } from 'zod';
import { LlmServiceError } from '../../errors.js';
import { MOODS, TENDENCIES, TONES, type OpinionPrediction } from '../engine.js';

// Parsed once per prediction (not per token), so zod's cost does not matter here.
const PredictionReply = z.object({
  prediction: z.object({
    tendency: z.enum(TENDENCIES),
    mood: z.enum(MOODS),
    tone: z.enum(TONES),
  }),
});

/** Extracts the JSON object from a reply that may be wrapped in a ```json fence or short chatter. */
function jsonObjectText(text: string): string {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  return start >= 0 && end > start ? text.slice(start, end + 1) : text;
}

/**
 * Validates the model's `{"prediction": {tendency, mood, tone}}` against the fixed lists of the protocol.
 * A value outside the lists is an error, never mapped to a guess.
 */
export function parsePrediction(text: string): OpinionPrediction {
  let json: unknown;
  try {
    json = JSON.parse(jsonObjectText(text));
  } catch (err) {
    throw new LlmServiceError('model output is not the expected prediction JSON', {
      details: 'not JSON',
      cause: err,
    });
  }
  const result = PredictionReply.safeParse(json);
  if (!result.success) {
    const details = result.error.issues
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw new LlmServiceError('model prediction is outside the allowed values', { details });
  }
  return result.data.prediction;
}
