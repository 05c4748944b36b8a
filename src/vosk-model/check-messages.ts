// What checkModel's parent and its child process say to each other: the request travels as one JSON
// argument, the report comes back as one JSON line on stdout. Both ends validate with these schemas.
import { z } from 'zod';

export const CheckRequestSchema = z.object({
  modelDir: z.string().min(1),
  sampleRateHz: z.number().int().positive(),
  /** Words to say (tone models only); default: the model's whole vocabulary from tones.json. */
  words: z.array(z.string()).nullable(),
  /** Phrases for a grammar recogniser (vosk_recognizer_new_grm), or null for a plain one. */
  grammar: z.array(z.string()).nullable(),
  /** Text the decode must produce (tone models); default: the spoken words joined by spaces. */
  expectedText: z.string().nullable(),
});
export type CheckRequest = z.infer<typeof CheckRequestSchema>;

export const CheckReportSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    loadMs: z.number(),
    recognizerMs: z.number(),
    decodeMs: z.number(),
    audioSeconds: z.number(),
    /** All non-empty result texts joined by spaces. */
    text: z.string(),
    /** Whether the model had tones.json, so the text was checked exactly. */
    hasToneTable: z.boolean(),
  }),
  z.object({
    ok: z.literal(false),
    stage: z.enum(['load', 'recognizer', 'decode', 'text']),
    reason: z.string(),
  }),
]);
export type CheckReport = z.infer<typeof CheckReportSchema>;
