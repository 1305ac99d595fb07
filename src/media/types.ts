/** What a probe of a media file tells: by `probeMp4` in-process, or by ffprobe. */
export interface ProbeResult {
  container: string;
  durationMs: number;
  /** The video stream, with its own duration (a container can be longer than its video). */
  video: { codec: string; width: number; height: number; durationMs: number } | null;
  audio: { codec: string } | null;
}
