//! NumPy `.npy` files (read with the `npyz` crate): upstream MNIST-1D's frozen split, and a
//! user's own data as `x_train.npy`, `y_train.npy`, `x_test.npy`, `y_test.npy`.

use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar};

use crate::{DataError, Dataset, Split};

/// The values of one `.npy` array, in C order, as f64 (every integer and float type of up to
/// 64 bits reads exactly, except integers above 2⁵³, which are no labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub values: Vec<f64>,
    /// Whether the file stores integers.
    pub integer: bool,
}

impl Array {
    /// The values as class labels: integers in `0..limit` (`limit` 0: no upper bound), or an
    /// error naming `path` and the first bad value.
    pub fn labels(&self, path: &Path, limit: u32) -> Result<Vec<u32>, DataError> {
        if !self.integer {
            return Err(DataError::new(path, "labels must be integers (int8 … int64 or uint8 … uint64)"));
        }
        if self.shape.len() != 1 {
            return Err(DataError::new(path, format!("labels of shape {:?}; expected one dimension", self.shape)));
        }
        self.values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v < 0.0 || v > u32::MAX as f64 || (limit > 0 && v >= limit as f64) {
                    let accepted = if limit > 0 { format!("0..{}", limit - 1) } else { "0 or more".into() };
                    Err(DataError::new(path, format!("label {v} at index {i}; accepted: {accepted}")))
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    }
}

/// Reads `path` as a `.npy` array of a plain numeric type in C order.
pub fn read(path: &Path) -> Result<Array, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
    let file = NpyFile::new(bytes.as_slice()).map_err(|e| DataError::new(path, format!("not a .npy file: {e}")))?;
    if file.order() == Order::Fortran {
        return Err(DataError::new(path, "Fortran order; save it with np.save(path, np.ascontiguousarray(a))"));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let DType::Plain(ty) = file.dtype() else {
        return Err(DataError::new(path, "a structured array; expected plain numbers"));
    };
    let bad = |e: std::io::Error| DataError::new(path, format!("malformed data: {e}"));
    let widen = |v: Vec<i64>| v.into_iter().map(|x| x as f64).collect::<Vec<_>>();
    let (values, integer): (Vec<f64>, bool) = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 8) => (file.into_vec::<f64>().map_err(bad)?, false),
        (TypeChar::Float, 4) => (file.into_vec::<f32>().map_err(bad)?.into_iter().map(f64::from).collect(), false),
        (TypeChar::Int, 8) => (widen(file.into_vec::<i64>().map_err(bad)?), true),
        (TypeChar::Int, 4) => (widen(file.into_vec::<i32>().map_err(bad)?.into_iter().map(i64::from).collect()), true),
        (TypeChar::Int, 2) => (widen(file.into_vec::<i16>().map_err(bad)?.into_iter().map(i64::from).collect()), true),
        (TypeChar::Int, 1) => (widen(file.into_vec::<i8>().map_err(bad)?.into_iter().map(i64::from).collect()), true),
        (TypeChar::Uint, 8) => (file.into_vec::<u64>().map_err(bad)?.into_iter().map(|x| x as f64).collect(), true),
        (TypeChar::Uint, 4) => (file.into_vec::<u32>().map_err(bad)?.into_iter().map(f64::from).collect(), true),
        (TypeChar::Uint, 2) => (file.into_vec::<u16>().map_err(bad)?.into_iter().map(f64::from).collect(), true),
        (TypeChar::Uint, 1) => (file.into_vec::<u8>().map_err(bad)?.into_iter().map(f64::from).collect(), true),
        _ => {
            return Err(DataError::new(
                path,
                format!("dtype {ty}; accepted: float32, float64 (features), int8 … int64, uint8 … uint64 (labels)"),
            ));
        }
    };
    Ok(Array { shape, values, integer })
}

/// The files of a user's dataset folder, in the order [`load_dataset`] reads them.
pub const USER_FILES: [&str; 4] = ["x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy"];

/// A user's dataset from `dir`: features `x_*.npy` of shape (samples, …) as f32 or f64, labels
/// `y_*.npy` as integers from 0. A sample keeps its shape (a 2-D sample is a one-channel image,
/// a 3-D one channels first); the number of classes is the largest label plus one.
pub fn load_dataset(dir: &Path) -> Result<Dataset, DataError> {
    let path = |name: &str| dir.join(name);
    let mut arrays = Vec::new();
    for name in USER_FILES {
        if !path(name).is_file() {
            return Err(DataError::new(
                dir,
                format!("{name} is missing; a folder given as npy:DIR holds {}", USER_FILES.join(", ")),
            ));
        }
        arrays.push(read(&path(name))?);
    }
    let [x_train, y_train, x_test, y_test] = <[Array; 4]>::try_from(arrays).expect("four files read");
    let mut splits = Vec::new();
    for (x, y, xn, yn) in
        [(&x_train, &y_train, USER_FILES[0], USER_FILES[1]), (&x_test, &y_test, USER_FILES[2], USER_FILES[3])]
    {
        if x.integer {
            return Err(DataError::new(&path(xn), "features are integers; save them as float32 or float64"));
        }
        if x.shape.len() < 2 || x.shape.contains(&0) {
            return Err(DataError::new(
                &path(xn),
                format!("shape {:?}; expected (samples, features…), none of them 0", x.shape),
            ));
        }
        if let Some(i) = x.values.iter().position(|v| !v.is_finite()) {
            return Err(DataError::new(
                &path(xn),
                format!("value {} at flat index {i}; features must be finite", x.values[i]),
            ));
        }
        let labels = y.labels(&path(yn), 0)?;
        if labels.len() != x.shape[0] {
            return Err(DataError::new(
                &path(yn),
                format!("{} labels for {} samples in {xn}", labels.len(), x.shape[0]),
            ));
        }
        splits.push(Split { features: x.values.iter().map(|&v| v as f32).collect(), labels });
    }
    if x_train.shape[1..] != x_test.shape[1..] {
        return Err(DataError::new(
            &path(USER_FILES[2]),
            format!("samples of shape {:?}, but {:?} in {}", &x_test.shape[1..], &x_train.shape[1..], USER_FILES[0]),
        ));
    }
    let test = splits.pop().expect("two splits");
    let train = splits.pop().expect("two splits");
    let classes = train.labels.iter().chain(&test.labels).max().map_or(0, |&m| m as usize + 1);
    if classes < 2 {
        return Err(DataError::new(&path(USER_FILES[1]), "fewer than two classes in the labels"));
    }
    // Labels are class indices: more classes than samples means they are something else (and
    // an output layer that wide would not fit in memory).
    if classes > train.len() + test.len() {
        return Err(DataError::new(
            &path(USER_FILES[1]),
            format!(
                "labels run up to {}, more classes than the {} samples; labels must be class indices 0, 1, …",
                classes - 1,
                train.len() + test.len()
            ),
        ));
    }
    Ok(Dataset {
        name: "npy".into(),
        sample_shape: x_train.shape[1..].to_vec(),
        classes,
        class_names: (0..classes).map(|c| c.to_string()).collect(),
        train,
        test,
        provenance: format!("user-supplied .npy files in {}", dir.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1.0 `.npy` file of `descr`, `shape` and little-endian `data`, as NumPy writes it.
    pub(crate) fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn write_user(dir: &Path, train: (&[usize], &[f32], &[i64]), test: (&[usize], &[f32], &[u8])) {
        let labels: Vec<u8> = train.2.iter().flat_map(|y| y.to_le_bytes()).collect();
        std::fs::write(dir.join("x_train.npy"), npy_bytes("<f4", train.0, &f32s(train.1))).unwrap();
        std::fs::write(dir.join("y_train.npy"), npy_bytes("<i8", &[train.2.len()], &labels)).unwrap();
        std::fs::write(dir.join("x_test.npy"), npy_bytes("<f4", test.0, &f32s(test.1))).unwrap();
        std::fs::write(dir.join("y_test.npy"), npy_bytes("|u1", &[test.2.len()], test.2)).unwrap();
    }

    #[test]
    fn a_users_folder_reads_with_its_shape_and_classes() {
        let dir = tempfile::tempdir().unwrap();
        // Three 2 × 2 images for training, one for testing; labels 0..2.
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        write_user(dir.path(), (&[3, 2, 2], &x, &[0, 2, 1]), (&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0], &[1]));
        let d = load_dataset(dir.path()).unwrap();
        assert_eq!(d.sample_shape, vec![2, 2]);
        assert_eq!(d.classes, 3);
        assert_eq!(d.train.labels, vec![0, 2, 1]);
        assert_eq!(d.train.features, x);
        assert_eq!(d.test.features, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(d.test.labels, vec![1]);
    }

    #[test]
    fn bad_user_data_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.problem.contains("x_train.npy is missing"), "{err}");
        // Label count differs from the sample count.
        write_user(dir.path(), (&[2, 2], &[0.0; 4], &[0, 1, 1]), (&[1, 2], &[0.0; 2], &[1]));
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.path.ends_with("y_train.npy") && err.problem.contains("3 labels for 2 samples"), "{err}");
        // A negative label.
        write_user(dir.path(), (&[2, 2], &[0.0; 4], &[0, -1]), (&[1, 2], &[0.0; 2], &[1]));
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.problem.contains("label -1 at index 1"), "{err}");
        // Train and test samples of different shapes.
        write_user(dir.path(), (&[2, 2], &[0.0; 4], &[0, 1]), (&[1, 3], &[0.0; 3], &[1]));
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.problem.contains("samples of shape [3]"), "{err}");
        // A label far beyond the number of samples (not a class index).
        write_user(dir.path(), (&[2, 2], &[0.0; 4], &[0, 4_000_000_000]), (&[1, 2], &[0.0; 2], &[1]));
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.problem.contains("more classes than the 3 samples"), "{err}");
        // An empty split.
        write_user(dir.path(), (&[2, 2], &[0.0; 4], &[0, 1]), (&[0, 2], &[], &[]));
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.path.ends_with("x_test.npy") && err.problem.contains("none of them 0"), "{err}");
        // A non-finite feature.
        write_user(dir.path(), (&[2, 2], &[0.0, f32::NAN, 0.0, 0.0], &[0, 1]), (&[1, 2], &[0.0; 2], &[1]));
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.problem.contains("must be finite"), "{err}");
        // Not a .npy file at all.
        std::fs::write(dir.path().join("x_train.npy"), b"hello").unwrap();
        let err = load_dataset(dir.path()).unwrap_err();
        assert!(err.problem.contains("not a .npy file"), "{err}");
    }

    #[test]
    fn float64_and_every_integer_width_read_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let v: Vec<u8> = [0.1f64, -2.5].iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&p, npy_bytes("<f8", &[2], &v)).unwrap();
        assert_eq!(read(&p).unwrap(), Array { shape: vec![2], values: vec![0.1, -2.5], integer: false });
        std::fs::write(&p, npy_bytes("<i2", &[2], &[7, 0, 0xff, 0xff])).unwrap();
        assert_eq!(read(&p).unwrap().values, vec![7.0, -1.0]);
        std::fs::write(&p, npy_bytes("<c8", &[1], &[0; 8])).unwrap();
        assert!(read(&p).unwrap_err().problem.contains("accepted: float32"));
    }
}
