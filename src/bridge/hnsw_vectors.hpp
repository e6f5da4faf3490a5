// Row-wise contiguous access to FLOAT[n] / DOUBLE[n] array vectors, whatever their vector type.
#pragma once

#include "hnsw_compat.hpp"

#include "duckdb.hpp"

namespace duckdb {
namespace hnsw {

//! Gives row-wise contiguous access to the elements of an array vector of T.
template <class T> class ArrayRows {
public:
	ArrayRows(const Vector &vector, idx_t count, const string &function, const char *side)
	    : size(ArrayType::GetSize(vector.GetType())), function(function), side(side) {
		ToUnifiedFormat(vector, count, outer);
		auto &child = ArrayChild(vector);
		ArrayElementsToUnifiedFormat(vector, elements);
		data = reinterpret_cast<const T *>(elements.data);
		contiguous = child.GetVectorType() == VectorType::FLAT_VECTOR;
		buffer.resize(size);
	}

	bool IsNull(idx_t row) const {
		return !outer.validity.RowIsValid(outer.sel->get_index(row));
	}

	//! Pointer to the row's elements; throws if one of them is NULL.
	const T *Row(idx_t row) {
		idx_t base = outer.sel->get_index(row) * size;
		if (contiguous && CannotHaveNull(elements.validity)) {
			return data + base;
		}
		for (idx_t i = 0; i < size; i++) {
			auto index = contiguous ? base + i : elements.sel->get_index(base + i);
			if (!elements.validity.RowIsValid(index)) {
				throw InvalidInputException("%s: %s argument can not contain NULL values", function, side);
			}
			buffer[i] = data[index];
		}
		return buffer.data();
	}

	const idx_t size;

private:
	const string &function;
	const char *side;
	UnifiedVectorFormat outer;
	UnifiedVectorFormat elements;
	const T *data;
	bool contiguous;
	vector<T> buffer;
};

//! The elements of a non-NULL ARRAY or LIST value as floats. False for a NULL value, another
//! type, or a NULL element (whose position then goes to `null_element`).
inline bool ValueToFloats(const Value &value, vector<float> &out, idx_t *null_element = nullptr) {
	auto id = value.type().id();
	if (value.IsNull() || (id != LogicalTypeId::ARRAY && id != LogicalTypeId::LIST)) {
		return false;
	}
	auto &children = id == LogicalTypeId::ARRAY ? ArrayValue::GetChildren(value) : ListValue::GetChildren(value);
	out.clear();
	out.reserve(children.size());
	for (idx_t i = 0; i < children.size(); i++) {
		if (children[i].IsNull()) {
			if (null_element) {
				*null_element = i;
			}
			return false;
		}
		out.push_back(children[i].DefaultCastAs(LogicalType::FLOAT).GetValue<float>());
	}
	return true;
}

} // namespace hnsw
} // namespace duckdb
