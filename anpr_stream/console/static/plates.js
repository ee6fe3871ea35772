// Plate comparison for the console (pure, no DOM): which characters of the plate as read differ from the plate on
// the list. Letters and digits are aligned by Levenshtein distance; separators are shown but never compared.
"use strict";

(function (root) {
  function alnumIndex(text) {
    const chars = [];
    const positions = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i].toUpperCase();
      if (/[A-Z0-9]/.test(c)) {
        chars.push(c);
        positions.push(i);
      }
    }
    return { chars, positions };
  }

  // Marks per raw character: true where the character is substituted or extra (read) / substituted or missing
  // in the read (listed).
  function alignPlates(read, listed) {
    const a = alnumIndex(read || "");
    const b = alnumIndex(listed || "");
    const n = a.chars.length;
    const m = b.chars.length;
    const d = [];
    for (let i = 0; i <= n; i++) {
      d.push(new Array(m + 1).fill(0));
      d[i][0] = i;
    }
    for (let j = 0; j <= m; j++) d[0][j] = j;
    for (let i = 1; i <= n; i++) {
      for (let j = 1; j <= m; j++) {
        const cost = a.chars[i - 1] === b.chars[j - 1] ? 0 : 1;
        d[i][j] = Math.min(d[i - 1][j - 1] + cost, d[i - 1][j] + 1, d[i][j - 1] + 1);
      }
    }
    const readMarks = new Array((read || "").length).fill(false);
    const listedMarks = new Array((listed || "").length).fill(false);
    let i = n;
    let j = m;
    while (i > 0 || j > 0) {
      if (i > 0 && j > 0 && d[i][j] === d[i - 1][j - 1] + (a.chars[i - 1] === b.chars[j - 1] ? 0 : 1)) {
        if (a.chars[i - 1] !== b.chars[j - 1]) {
          readMarks[a.positions[i - 1]] = true;
          listedMarks[b.positions[j - 1]] = true;
        }
        i--;
        j--;
      } else if (i > 0 && d[i][j] === d[i - 1][j] + 1) {
        readMarks[a.positions[i - 1]] = true;
        i--;
      } else {
        listedMarks[b.positions[j - 1]] = true;
        j--;
      }
    }
    return { read: readMarks, listed: listedMarks, distance: d[n][m] };
  }

  root.Plates = { alignPlates };
})(typeof window !== "undefined" ? window : globalThis);
