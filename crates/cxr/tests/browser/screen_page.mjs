// Drives the `cxr serve` page in Debian's Chromium: picks a PNG X-ray, drops a DICOM one,
// waits for the decision, heat map and lung outline, toggles the layers, takes a screenshot.
//   node screen_page.mjs URL PNG DICOM SCREENSHOT   -> one JSON line of what the page showed
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { chromium } from "playwright-core";

const [url, png, dicom, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const shown = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("model-line").textContent.startsWith("Model "));
  shown.operating_points = await page.$$eval("#point option", (o) => o.map((x) => x.value));

  // Pick a file, as with the file dialog.
  await page.setInputFiles("#files", png);
  const layersLoaded = () => ["xray", "heat", "lungs"].every((id) => {
    const img = document.getElementById(id);
    return img.complete && img.naturalWidth > 0 && !img.hidden;
  });
  await page.waitForFunction(layersLoaded, null, { timeout: 60000 });
  await page.waitForFunction((name) => document.getElementById("details").textContent.includes(name), basename(png));
  shown.png = {
    verdict: await page.textContent("#verdict"),
    probability: await page.textContent("#probability"),
    size: await page.$eval("#xray", (i) => [i.naturalWidth, i.naturalHeight]),
  };
  await page.uncheck("#show-heat");
  shown.heat_hidden_when_unticked = await page.$eval("#heat", (i) => getComputedStyle(i).display === "none");
  await page.check("#show-heat");
  shown.heat_shown_when_ticked = await page.$eval("#heat", (i) => getComputedStyle(i).display !== "none");

  // Drop a DICOM file on the drop zone.
  const data = readFileSync(dicom).toString("base64");
  const transfer = await page.evaluateHandle(({ data, name }) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: "application/dicom" }));
    return dt;
  }, { data, name: basename(dicom) });
  await page.dispatchEvent("#drop", "drop", { dataTransfer: transfer });
  await page.waitForFunction((name) => document.getElementById("details").textContent.includes(name), basename(dicom), { timeout: 60000 });
  await page.waitForFunction(layersLoaded, null, { timeout: 60000 });
  shown.dicom = {
    verdict: await page.textContent("#verdict"),
    details: await page.textContent("#details"),
  };
  await page.waitForFunction(() => document.querySelectorAll("#history tr").length >= 2);
  shown.history_rows = await page.$$eval("#history tr", (rows) => rows.length);
  await page.screenshot({ path: screenshot, fullPage: true });
  shown.errors = problems;
} finally {
  await browser.close();
}
console.log(JSON.stringify(shown));
