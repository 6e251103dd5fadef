// Library code reports progress and per-item problems through a sink it is given; only the CLI
// renders them (a terminal line, log lines, or JSON).
export interface ProgressCounters {
  files: number;
  dirs: number;
  bytes: number;
  totalBytes?: number;
  current?: string;
}

export interface Warning {
  code: string; // a SNAP_* code or an errno (EACCES, ...)
  path?: string;
  message: string;
}

export interface ProgressSink {
  /** Called often; renderers throttle. */
  progress?(c: Readonly<ProgressCounters>): void;
  /** A per-file problem that does not abort the operation. */
  warn?(w: Warning): void;
  /** An informational line (index rebuilt, lock broken, ...). */
  info?(message: string): void;
}

export const nullSink: ProgressSink = {};
