/** One step of the schema, applied once, in order, inside a transaction with `PRAGMA user_version`. */
export interface Migration {
  /** The schema version after this step: 1, 2, 3... without gaps. */
  readonly version: number;
  /** What the step does, for the log. */
  readonly name: string;
  /** Statements run with `exec` (several allowed). Never edit a released step: add a new one. */
  readonly sql: string;
}
