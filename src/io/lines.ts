// The line splitting both text parsers share (event files, text traces): LF or CRLF,
// numbered from 1 for the error messages.

/** Each line of `text` without its line ending, with its 1-based number. */
export function* textLines(text: string): Generator<[number, string]> {
  let no = 0, start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    yield [++no, line];
    start = end + 1;
  }
}
