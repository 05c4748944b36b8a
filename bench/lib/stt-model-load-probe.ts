// Child process of modelResidentBytes(): loads a Vosk model once and prints how much VmRSS grew, as JSON.
//   node --import tsx bench/lib/stt-model-load-probe.ts MODEL_DIR
import vosk from 'vosk-koffi';

import { processRssBytes } from './stt-server.js';

const modelDir = process.argv[2];
if (modelDir === undefined) throw new Error('usage: stt-model-load-probe.ts MODEL_DIR');
vosk.libvosk.vosk_set_log_level(-1);
// libvosk.so is already mapped (imported above): only the model's own memory is counted.
const before = processRssBytes(process.pid);
const model: unknown = vosk.libvosk.vosk_model_new(modelDir);
if (model === null || model === undefined) throw new Error(`libvosk could not load ${modelDir}`);
const after = processRssBytes(process.pid);
vosk.libvosk.vosk_model_free(model);
process.stdout.write(`${JSON.stringify({ modelResidentBytes: after - before })}\n`);
