// OpenFst binary "vector" FSTs with "standard" (tropical float32) arcs, file version 2: the format
// libvosk reads for HCLG.fst, HCLr.fst and Gr.fst (vosk-test-model.md §3.4).

const FST_MAGIC = 2125659606;
const FST_FILE_VERSION = 2;
/** kExpanded | kMutable: claims no other property, so OpenFst computes what it needs. */
export const FST_PROPERTIES_NOTHING_CLAIMED = 0x3n;

export interface FstArc {
  inputLabel: number;
  outputLabel: number;
  /** Tropical cost (-log probability), stored as float32. */
  weight: number;
  nextState: number;
}

export interface FstState {
  /** Final cost, or null when the state is not final (written as +Infinity). */
  finalWeight: number | null;
  arcs: FstArc[];
}

function fstString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeInt32LE(bytes.length);
  return Buffer.concat([length, bytes]);
}

export function encodeVectorFst(states: readonly FstState[], startState = 0): Buffer {
  const numArcs = states.reduce((sum, state) => sum + state.arcs.length, 0);
  const magic = Buffer.alloc(4);
  magic.writeInt32LE(FST_MAGIC);
  const fields = Buffer.alloc(40);
  let at = fields.writeInt32LE(FST_FILE_VERSION, 0);
  at = fields.writeUInt32LE(0, at); // flags: no symbol tables, so libvosk reads words.txt
  at = fields.writeBigUInt64LE(FST_PROPERTIES_NOTHING_CLAIMED, at);
  at = fields.writeBigInt64LE(BigInt(startState), at);
  at = fields.writeBigInt64LE(BigInt(states.length), at);
  fields.writeBigInt64LE(BigInt(numArcs), at);

  const body = Buffer.alloc(states.length * 12 + numArcs * 16);
  let pos = 0;
  for (const state of states) {
    pos = body.writeFloatLE(state.finalWeight ?? Infinity, pos);
    pos = body.writeBigInt64LE(BigInt(state.arcs.length), pos);
    for (const arc of state.arcs) {
      pos = body.writeInt32LE(arc.inputLabel, pos);
      pos = body.writeInt32LE(arc.outputLabel, pos);
      pos = body.writeFloatLE(arc.weight, pos);
      pos = body.writeInt32LE(arc.nextState, pos);
    }
  }
  return Buffer.concat([magic, fstString('vector'), fstString('standard'), fields, body]);
}
