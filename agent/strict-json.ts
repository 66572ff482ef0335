/**
 * Duplicate-key detection for JSON text that JSON.parse has already accepted. JSON.parse keeps the
 * last of two equal keys, other parsers the first or both: a signed grant or a command carrying
 * `"aud"` twice would mean one thing to the camera and another to a cloud-side validator, so such
 * text is refused. One linear pass, no recursion (depth costs one stack entry), keys compared after
 * unescaping (`"a"` and `"\u0061"` are the same key).
 * Must never be called on text JSON.parse refused (it assumes well-formed JSON), never throw.
 */

/** The first key that appears twice in one object, anywhere in `text`; undefined if none. */
export function duplicateKey(text: string): string | undefined {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        let key: string;
        try {
          key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        } catch {
          return text.slice(i + 1, Math.min(j, i + 41));
        }
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}
