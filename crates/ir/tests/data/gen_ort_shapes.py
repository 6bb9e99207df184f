"""Regenerate ort_shapes.txt: output shapes from onnxruntime for random Conv, ConvTranspose,
pooling, Slice and Resize configurations. Needs numpy, onnx and onnxruntime; cargo test only
reads the generated file."""
import os
import numpy as np, onnx, onnxruntime as ort, random, sys
from onnx import helper as h
random.seed(1234)
so = ort.SessionOptions(); so.log_severity_level = 4
def run(op, inputs, attrs, nout=1):
    nodes=[h.make_node(op, [n for n,_ in inputs], [f"y{i}" for i in range(nout)], **attrs)]
    g=h.make_graph(nodes,"g",[h.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n,a in inputs],[h.make_empty_tensor_value_info(f"y{i}") for i in range(nout)])
    m=h.make_model(g,opset_imports=[h.make_opsetid("",18)], ir_version=9)
    try:
        s=ort.InferenceSession(m.SerializeToString(), so)
        return [o.shape for o in s.run(None,{n:a for n,a in inputs})]
    except Exception as e:
        return None
L=lambda v: ",".join(str(x) for x in v)
lines=[]
def emit(s): lines.append(s)
f=lambda s: np.zeros(s,np.float32)
pads_modes=["NOTSET","NOTSET","VALID","SAME_UPPER","SAME_LOWER"]
n=0
while n < 60:
    sp=[random.randint(1,12) for _ in range(2)]; cin=random.choice([1,2,4]); g=random.choice([1,cin]) ; m=g*random.randint(1,3)
    k=[random.randint(1,4) for _ in range(2)]; st=[random.randint(1,3) for _ in range(2)]; dl=[random.randint(1,2) for _ in range(2)]
    pd=[random.randint(0,2) for _ in range(4)]; ap=random.choice(pads_modes)
    attrs=dict(strides=st,dilations=dl,group=g,auto_pad=ap)
    if ap=="NOTSET": attrs["pads"]=pd
    if ap in ("NOTSET","VALID") and any(sp[i] + (pd[i]+pd[i+2] if ap=="NOTSET" else 0) < (k[i]-1)*dl[i]+1 for i in range(2)): continue
    r=run("Conv",[("x",f([1,cin]+sp)),("w",f([m,cin//g]+k))],attrs)
    if r is None: continue
    emit(f"Conv x={L([1,cin]+sp)} w={L([m,cin//g]+k)} strides={L(st)} dilations={L(dl)} group={g} auto_pad={ap} pads={L(pd if ap=='NOTSET' else [])} -> {L(r[0])}")
    n+=1
n=0
while n < 50:
    sp=[random.randint(1,9) for _ in range(2)]; cin=random.choice([1,2,4]); g=random.choice([1,cin]); mg=random.randint(1,2)
    k=[random.randint(1,4) for _ in range(2)]; st=[random.randint(1,3) for _ in range(2)]; dl=[random.randint(1,2) for _ in range(2)]
    pd=[random.randint(0,2) for _ in range(4)]; op_=[random.randint(0,1) for _ in range(2)]
    ap=random.choice(["NOTSET","NOTSET","VALID","SAME_UPPER","SAME_LOWER"])
    attrs=dict(strides=st,dilations=dl,group=g,auto_pad=ap)
    extra=""
    if ap=="NOTSET": attrs["pads"]=pd; extra+=f" pads={L(pd)}"
    if random.random()<0.5:
        op_=[min(o, s-1) for o,s in zip(op_,st)]
        attrs["output_padding"]=op_; extra+=f" output_padding={L(op_)}"
    if random.random()<0.3:
        os_=[random.randint(1,20) for _ in range(2)]; attrs["output_shape"]=os_; extra+=f" output_shape={L(os_)}"
    r=run("ConvTranspose",[("x",f([1,cin]+sp)),("w",f([cin,mg]+k))],attrs)
    if r is None: continue
    emit(f"ConvTranspose x={L([1,cin]+sp)} w={L([cin,mg]+k)} strides={L(st)} dilations={L(dl)} group={g} auto_pad={ap}{extra} -> {L(r[0])}")
    n+=1
n=0
while n < 60:
    op=random.choice(["MaxPool","AveragePool"])
    sp=[random.randint(1,12) for _ in range(2)]
    k=[random.randint(1,4) for _ in range(2)]; st=[random.randint(1,3) for _ in range(2)]
    pd=[random.randint(0,k[i%2]-1) for i in range(4)]; ap=random.choice(pads_modes); ceil=random.randint(0,1)
    attrs=dict(kernel_shape=k,strides=st,auto_pad=ap,ceil_mode=ceil)
    dl=[1,1]
    # onnxruntime ignores dilations when computing SAME pads of pools (ONNX shape inference does not).
    if op=="MaxPool" and ap not in ("SAME_UPPER","SAME_LOWER"): dl=[random.randint(1,2) for _ in range(2)]; attrs["dilations"]=dl
    if ap=="NOTSET": attrs["pads"]=pd
    if ap in ("NOTSET","VALID") and any(sp[i] + (pd[i]+pd[i+2] if ap=="NOTSET" else 0) < (k[i]-1)*dl[i]+1 for i in range(2)): continue
    r=run(op,[("x",f([1,2]+sp))],attrs)
    if r is None: continue
    emit(f"{op} x={L([1,2]+sp)} kernel={L(k)} strides={L(st)} dilations={L(dl)} auto_pad={ap} ceil={ceil} pads={L(pd if ap=='NOTSET' else [])} -> {L(r[0])}")
    n+=1
n=0
while n < 80:
    rank=random.randint(1,3); shp=[random.randint(0,8) for _ in range(rank)]
    k=random.randint(1,rank); axes=random.sample(range(rank),k); axes=[a-rank if random.random()<0.3 else a for a in axes]
    vals=[-20,-9,-5,-3,-2,-1,0,1,2,3,4,5,7,9,20,2**62,-2**62]
    s=[random.choice(vals) for _ in range(k)]; e=[random.choice(vals) for _ in range(k)]; stp=[random.choice([-3,-2,-1,1,1,2,3]) for _ in range(k)]
    i64=lambda v: np.array(v,np.int64)
    r=run("Slice",[("x",f(shp)),("s",i64(s)),("e",i64(e)),("a",i64(axes)),("t",i64(stp))],{})
    if r is None: continue
    emit(f"Slice x={L(shp)} starts={L(s)} ends={L(e)} axes={L(axes)} steps={L(stp)} -> {L(r[0])}")
    n+=1
n=0
while n < 40:
    rank=random.randint(1,4); shp=[random.randint(1,9) for _ in range(rank)]
    sc=[random.choice([1.0,1.0,0.5,2.0,1.5,0.3,1/3,2.7,0.25]) for _ in range(rank)]
    r=run("Resize",[("x",f(shp)),("roi",np.zeros(0,np.float32)),("sc",np.array(sc,np.float32))],dict(mode="nearest"))
    if r is None: continue
    emit(f"Resize x={L(shp)} scales={L(repr(float(np.float32(v))) for v in sc)} -> {L(r[0])}")
    n+=1
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_shapes.txt"),"w").write("# Output shapes computed by onnxruntime 1.32 (opset 18) for random attribute combinations.\n# Excluded: windows larger than the padded input, and dilated SAME pooling (onnxruntime\n# ignores the dilation there; ONNX shape inference and Lithe follow the spec).\n"+"\n".join(lines)+"\n")
print(len(lines))
