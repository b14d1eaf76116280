//! The pictures of recent screenings, held in memory (bounded) so the page can show the X-ray,
//! its heat map and lung outline without the server storing images on disk.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

use crate::engine::Pictures;

/// One screening's pictures, and its heat map once drawn (drawn on first request).
pub struct Entry {
    pub pictures: Arc<Pictures>,
    pub heat_png: Mutex<Option<Bytes>>,
}

/// The last `capacity` screenings' pictures; the oldest is dropped first.
pub struct Recent {
    entries: Mutex<VecDeque<(String, Arc<Entry>)>>,
    capacity: usize,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    pub fn insert(&self, id: String, pictures: Pictures) {
        if self.capacity == 0 {
            return;
        }
        let entry = Arc::new(Entry {
            pictures: Arc::new(pictures),
            heat_png: Mutex::new(None),
        });
        if let Ok(mut entries) = self.entries.lock() {
            while entries.len() >= self.capacity {
                entries.pop_front();
            }
            entries.push_back((id, entry));
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(key, _)| key == id)
            .map(|(_, entry)| Arc::clone(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cxr_core::{DecodedImage, GrayImage, Photometric, SourceFormat};

    fn pictures() -> Pictures {
        let image = GrayImage::filled(4, 4, 0.5);
        Pictures {
            xray: DecodedImage::new(image, SourceFormat::Png, 8, Photometric::Monochrome2),
            lungs: None,
        }
    }

    #[test]
    fn the_oldest_pictures_are_dropped_first() {
        let recent = Recent::new(2);
        recent.insert("a".into(), pictures());
        recent.insert("b".into(), pictures());
        recent.insert("c".into(), pictures());
        assert!(recent.get("a").is_none());
        assert!(recent.get("b").is_some() && recent.get("c").is_some());
        let none = Recent::new(0);
        none.insert("a".into(), pictures());
        assert!(none.get("a").is_none());
    }
}
